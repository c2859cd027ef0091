import AccordCore
import Hummingbird

/// The context of network administration routes: it cannot be made without a signed-in network
/// administrator (401 without a caller, 403 for anyone else), so an admin handler cannot compile
/// without one.
public struct AdminContext: ChildRequestContext {
    /// The signed-in caller, a network administrator.
    public private(set) var caller: AuthenticatedContext

    public init(context: AccordRequestContext) throws {
        caller = try AuthenticatedContext(context: context)
        guard caller.identity.isNetworkAdmin else { throw Self.notNetworkAdmin }
    }

    /// The 403 of a caller who is not a network administrator.
    static let notNetworkAdmin = Problem.forbidden("Only network administrators may do this.")

    public var coreContext: CoreRequestContextStorage {
        get { caller.coreContext }
        set { caller.coreContext = newValue }
    }

    public var identity: Identity { caller.identity }
    public var maxUploadSize: Int { caller.maxUploadSize }
    public var responseEncoder: WireEncoder { WireEncoder() }
}
