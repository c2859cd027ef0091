/// Addresses of the web client's pages, for links in mail: the page is in the fragment
/// (`https://accord.example/#/reset-password/TOKEN`). A browser never sends a fragment, so a token
/// in a link reaches no server log, proxy or `Referer`.
public enum ClientLink {
    /// The client's root for pages: `base` (the public URL) with `/#` after it.
    public static func root(_ base: String) -> String {
        (base.hasSuffix("/") ? String(base.dropLast()) : base) + "/#"
    }

    /// The page at `path` (starting with `/`).
    public static func page(_ path: String, base: String) -> String { root(base) + path }
}
