/** Facts about a request that only the host knows (the connection's address), kept beside the request. */
const addresses = new WeakMap<Request, string>();

/** Records the client address the host determined (after its trusted-proxy rules). */
export function attachClientAddress(request: Request, address: string): void {
  addresses.set(request, address);
}

/** The client address the host gave for the request, if any. */
export function clientAddressOf(request: Request): string | undefined {
  return addresses.get(request);
}
