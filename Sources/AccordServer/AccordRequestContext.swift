import Hummingbird
import Logging

/// The request context of every Accord route: Hummingbird's core storage plus the request id that
/// the log line, the `X-Request-ID` header and problem bodies share.
public struct AccordRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The id of this request: the caller's `X-Request-ID` when it is sensible, else a new one.
    public var requestID: String

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.requestID = ""
    }

    /// Request bodies are limited to 1 MiB.
    public var maxUploadSize: Int { 1 << 20 }
}
