/** A page that only tells something (errors the user can act on). */
export function MessagePage(props: { base: string; heading: string; text: string }) {
  return (
    <>
      <h1>{props.heading}</h1>
      <p role="alert">{props.text}</p>
      <p>
        <a href={`${props.base}/`}>Home</a>
      </p>
    </>
  );
}
