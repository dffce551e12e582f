/** Unix seconds as ISO 8601 without milliseconds (empty when unknown), as the admin pages show times. */
export const isoTime = (seconds: number | undefined) => (seconds === undefined ? "" : new Date(seconds * 1000).toISOString().replace(".000Z", "Z"));

/** A one-button POST form with the page's CSRF token (and any hidden fields), as the admin pages' row actions use. */
export function PostButton(props: { action: string; csrf: string; name: string; value: string; label: string; hidden?: Record<string, string>; secondary?: boolean; disabled?: boolean }) {
  return (
    <form method="post" action={props.action}>
      <input type="hidden" name="csrf" value={props.csrf} />
      {Object.entries(props.hidden ?? {}).map(([name, value]) => (
        <input type="hidden" name={name} value={value} />
      ))}
      <button type="submit" name={props.name} value={props.value} class={props.secondary === false ? undefined : "secondary"} disabled={props.disabled}>
        {props.label}
      </button>
    </form>
  );
}
