import Foundation
import Hummingbird
import Logging
import Synchronization

/// The request context of every Accord route: Hummingbird's core storage, the request id that the
/// log line, the `X-Request-ID` header and problem bodies share, and — once the authenticator has
/// run — who is calling.
public struct AccordRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The id of this request: the caller's `X-Request-ID` when it is sensible, else a new one.
    public var requestID: String
    /// The caller, when a valid bearer token came with the request.
    public var identity: Identity?
    /// The client's address, for rate limits and the audit log.
    public var clientAddress: String?
    /// What inner layers learn that the request's log line tells (shared by every copy).
    public let facts = RequestFacts()

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.requestID = ""
        self.identity = nil
        self.clientAddress = source.channel.remoteAddress?.ipAddress
    }

    /// Request bodies are limited to 1 MiB.
    public var maxUploadSize: Int { 1 << 20 }
    /// Response bodies with ids in lower case.
    public var responseEncoder: WireEncoder { WireEncoder() }
}

/// The context of routes that need a signed-in caller: it cannot be made without an identity, so a
/// handler that needs one cannot compile without it.
public struct AuthenticatedContext: ChildRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let requestID: String
    public let identity: Identity
    public let clientAddress: String?

    public init(context: AccordRequestContext) throws {
        guard let identity = context.identity else { throw Problem.unauthorized() }
        self.coreContext = context.coreContext
        self.requestID = context.requestID
        self.identity = identity
        self.clientAddress = context.clientAddress
    }

    public var maxUploadSize: Int { 1 << 20 }
    public var responseEncoder: WireEncoder { WireEncoder() }
}

/// What the request's log line says besides method, route and status, learnt as the request is
/// handled: the caller's institution once the authenticator has run.
public final class RequestFacts: Sendable {
    private let institution = Mutex<UUID?>(nil)

    public init() {}

    public var institutionID: UUID? {
        get { institution.withLock { $0 } }
        set { institution.withLock { $0 = newValue } }
    }
}
