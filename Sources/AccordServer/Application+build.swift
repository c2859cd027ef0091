import AccordCore
import Admin
import Delivery
import Directory
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Institutions
import Logging
import PGStore
import Partnerships
import Rooms
import ServiceLifecycle
import UnixSignals
import WebClient
import Webhooks

/// What `accord serve` needs: where to listen, the database, and the migration files.
public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var database: PGConfiguration
    public var schemaDirectory: URL
    public var identity: IdentityConfiguration
    /// The first network administrator, created at start-up when there is none yet.
    public var bootstrapAdmin: (email: String, password: String)?
    /// Resolved sessions kept in memory (see `IdentityCache`); nil: every request asks the database.
    public var identityCache: IdentityCache.Configuration?
    /// The directory in memory for text searches (see `DirectoryIndex`); nil: searches are SQL only.
    public var directoryIndex: DirectoryIndex.Configuration?
    /// The reverse proxies whose `X-Forwarded-For` names the client.
    public var trustedProxies: TrustedProxies
    /// Rooms: limits, and what their sockets need (the instance's name, presence timing).
    public var rooms: RoomsConfiguration
    public var roomHub: RoomHub.Configuration
    /// Origins that may open room sockets from a browser (`ACCORD_ALLOWED_ORIGINS`); empty: any.
    public var allowedOrigins: Set<String>
    /// `GET /metrics` needs this bearer token when set (`ACCORD_METRICS_TOKEN`).
    public var metricsToken: String?
    /// Serves `/metrics` on a port of its own instead of the API's (`ACCORD_METRICS_PORT`).
    public var metricsPort: Int?
    /// Where mail goes (`ACCORD_SMTP_URL`); nil: mail stays in the outbox.
    public var smtp: SMTPConfiguration?
    public var mailDelivery = MailDelivery.Configuration()
    /// What webhook URLs may be (`ACCORD_WEBHOOKS_ALLOW_LOOPBACK`), and how they are called.
    public var webhooks = WebhookPolicy()
    public var webhookDelivery = WebhookDelivery.Configuration()

    public init(
        host: String = "127.0.0.1", port: Int = 8080, database: PGConfiguration, schemaDirectory: URL,
        identity: IdentityConfiguration = IdentityConfiguration(), bootstrapAdmin: (email: String, password: String)? = nil,
        identityCache: IdentityCache.Configuration? = IdentityCache.Configuration(),
        directoryIndex: DirectoryIndex.Configuration? = DirectoryIndex.Configuration(), trustedProxies: TrustedProxies = .none,
        rooms: RoomsConfiguration = RoomsConfiguration(), roomHub: RoomHub.Configuration = RoomHub.Configuration(), allowedOrigins: Set<String> = []
    ) {
        self.host = host
        self.port = port
        self.database = database
        self.schemaDirectory = schemaDirectory
        self.identity = identity
        self.bootstrapAdmin = bootstrapAdmin
        self.identityCache = identityCache
        self.directoryIndex = directoryIndex
        self.trustedProxies = trustedProxies
        self.rooms = rooms
        self.roomHub = roomHub
        self.allowedOrigins = allowedOrigins
        self.metricsToken = nil
        self.metricsPort = nil
    }
}

/// A start-up failure with one line for the operator.
public struct StartupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Builds the router: middleware, then every feature's routes. Tests call this too.
public func buildRouter(
    pool: PGPool, schemaCheck: SchemaCheck, identity: IdentityConfiguration = IdentityConfiguration(),
    identityCache: IdentityCache? = nil, directoryIndex: DirectoryIndex? = nil, trustedProxies: TrustedProxies = .none,
    rooms: RoomsConfiguration = RoomsConfiguration(), roomSockets: RoomSocketRoutes? = nil, metrics: ServerMetrics? = nil,
    webhooks: WebhookPolicy = WebhookPolicy(), logger: Logger = Logger(label: "accord")
) -> Router<AccordRequestContext> {
    ServerMetrics.bootstrap()
    let router = Router(context: AccordRequestContext.self)
    router.add(middleware: RequestLogMiddleware())
    router.add(middleware: MetricsMiddleware())
    router.add(middleware: ClientAddressMiddleware(trusted: trustedProxies))
    let routes = RouteTable()
    router.add(middleware: ProblemMiddleware(routes: routes))
    if let webClient = WebClientMiddleware<AccordRequestContext>(logger: logger) { router.add(middleware: webClient) }
    HealthController(schemaCheck: schemaCheck, directoryIndex: directoryIndex, logger: logger).addRoutes(to: router)
    OpenAPIController().addRoutes(to: router)
    metrics?.addRoute(to: router)

    let reference = ReferenceData(pool: pool)
    let identityService = IdentityService(pool: pool, configuration: identity, reference: reference, cache: identityCache, logger: logger)
    let identityController = IdentityController(identity: identityService)
    identityController.addMeRoute(to: router.group("v1"))
    let v1 = router.group("v1").add(middleware: Authenticator(identity: identityService))
    let authenticated = v1.group(context: AuthenticatedContext.self)
    identityController.addRoutes(public: v1, authenticated: authenticated)
    let admission = AdmissionService(pool: pool, publicBaseURL: identity.publicBaseURL, identitiesChanged: { identityCache?.invalidateAll() })
    AdminController(admission: admission).addRoutes(to: v1.group(context: AdminContext.self))
    DirectoryController(
        directory: DirectoryService(pool: pool, reference: reference, index: directoryIndex), reference: reference, tiers: Tiers(pool: pool)
    ).addRoutes(
        to: authenticated)
    RoomsController(rooms: RoomService(pool: pool, reference: reference, configuration: rooms)).addRoutes(to: authenticated)
    PartnershipsController(partnerships: PartnershipService(pool: pool, reference: reference)).addRoutes(to: authenticated)
    WebhooksController(webhooks: WebhookService(pool: pool, policy: webhooks)).addRoutes(to: authenticated)
    roomSockets?.addFallbackRoute(to: v1)
    routes.record(router.routes.map { (method: $0.method.rawValue, path: $0.path.description) })
    return router
}

/// The socket routes of rooms, on `hub`, authenticating as the identity feature does.
public func buildRoomSockets(
    pool: PGPool, hub: RoomHub, identity: IdentityConfiguration, identityCache: IdentityCache?, rooms: RoomsConfiguration,
    allowedOrigins: Set<String>, logger: Logger = Logger(label: "accord")
) -> RoomSocketRoutes {
    let identityService = IdentityService(
        pool: pool, configuration: identity, reference: ReferenceData(pool: pool), cache: identityCache, logger: logger)
    return RoomSocketRoutes(
        rooms: RoomService(pool: pool, reference: ReferenceData(pool: pool), configuration: rooms), hub: hub, allowedOrigins: allowedOrigins,
        authenticate: { try await identityService.authenticate(tokenHash: $0) })
}

/// The upgrade router of room sockets, with the WebSocket limits of the protocol (a frame over the
/// limit closes with 1009; a client that has not answered a ping by the next is closed).
public func webSocketServer(_ sockets: RoomSocketRoutes, hub: RoomHub) -> HTTPServerBuilder {
    let limits = hub.configuration.limits
    return RoomSocketChannel.server(
        sockets,
        configuration: WebSocketServerConfiguration(
            maxFrameSize: limits.maxFrameBytes, autoPing: .enabled(timePeriod: limits.pingInterval), validateUTF8: true))
}

/// Builds the Accord application: the HTTP server with its router, and the database pool as a
/// service of the same `ServiceGroup`; and the rooms' hub, to run after it in a service group of
/// its own (`runServer`), so that on shutdown the sockets are closed (1001) before the server
/// stops. Before serving it checks the database: a schema that is
/// behind, or credentials the database refuses, stop start-up with one clear line; an unreachable
/// database only makes `/readyz` answer 503 until it is back.
public func buildApplication(
    _ configuration: ServerConfiguration,
    logger: Logger = Logger(label: "accord")
) throws -> (application: some ApplicationProtocol, roomHub: RoomHub) {
    let migrations = try Migration.load(from: configuration.schemaDirectory)
    let pool = PGPool(configuration: configuration.database, logger: logger)
    let schemaCheck = SchemaCheck(migrations: migrations, pool: pool)
    // At start-up the database gets longer to answer than a probe does: a slow answer taken for an
    // unreachable database would start a server on a schema it never checked.
    let startupCheck = SchemaCheck(migrations: migrations, pool: pool, timeout: .seconds(30))
    var services: [any Service] = [pool]
    var identityCache: IdentityCache?
    var directoryIndex: DirectoryIndex?
    // One more connection, for LISTEN: the identity cache forgets, the directory index reads
    // again, and room sockets hear of messages stored by any instance.
    let listener = PGListener(configuration: configuration.database, logger: logger)
    services.append(listener)
    if let cacheConfiguration = configuration.identityCache {
        let cache = IdentityCache(listener: listener, configuration: cacheConfiguration, logger: logger)
        services.append(cache)
        identityCache = cache
    }
    if let indexConfiguration = configuration.directoryIndex {
        let index = DirectoryIndex(pool: pool, listener: listener, configuration: indexConfiguration, logger: logger)
        services.append(index)
        directoryIndex = index
    }
    services.append(PartnershipClock(pool: pool, logger: logger))
    let hub = RoomHub(pool: pool, listener: listener, configuration: configuration.roomHub, logger: logger)
    var mail: MailDelivery?
    if let smtp = configuration.smtp {
        let delivery = MailDelivery(pool: pool, client: SMTPClient(configuration: smtp), configuration: configuration.mailDelivery, logger: logger)
        services.append(delivery)
        mail = delivery
    }
    var webhookConfiguration = configuration.webhookDelivery
    webhookConfiguration.allowLoopback = configuration.webhooks.allowLoopback
    webhookConfiguration.publicBaseURL = configuration.identity.publicBaseURL
    let webhookDelivery = WebhookDelivery(pool: pool, configuration: webhookConfiguration, logger: logger)
    services.append(webhookDelivery)
    let metrics = ServerMetrics(
        sources: .init(pool: pool, listener: listener, directoryIndex: directoryIndex, roomHub: hub, mail: mail, webhooks: webhookDelivery),
        token: configuration.metricsToken)
    if let port = configuration.metricsPort {
        // Metrics on a port of their own: a second HTTP server with that one route.
        let metricsRouter = Router()
        metrics.addRoute(to: metricsRouter)
        services.append(
            Application(
                router: metricsRouter, configuration: .init(address: .hostname(configuration.host, port: port), serverName: "accord-metrics"),
                logger: logger))
    }
    let sockets = buildRoomSockets(
        pool: pool, hub: hub, identity: configuration.identity, identityCache: identityCache, rooms: configuration.rooms,
        allowedOrigins: configuration.allowedOrigins, logger: logger)
    let router = buildRouter(
        pool: pool, schemaCheck: schemaCheck, identity: configuration.identity, identityCache: identityCache,
        directoryIndex: directoryIndex, trustedProxies: configuration.trustedProxies, rooms: configuration.rooms, roomSockets: sockets,
        metrics: configuration.metricsPort == nil ? metrics : nil, webhooks: configuration.webhooks, logger: logger)
    var application = Application(
        router: router,
        server: webSocketServer(sockets, hub: hub),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "accord"),
        services: services,
        logger: logger
    )
    application.beforeServerStarts {
        switch await startupCheck.check() {
        case .current(let count):
            logger.info("database schema is current", metadata: ["migrations": "\(count)"])
            if let admin = configuration.bootstrapAdmin {
                let service = IdentityService(pool: pool, configuration: configuration.identity, reference: ReferenceData(pool: pool), logger: logger)
                do {
                    if try await service.bootstrapNetworkAdmin(email: admin.email, password: admin.password) {
                        logger.notice("created the first network administrator", metadata: ["email": "\(admin.email)"])
                    }
                } catch let problem as Problem {
                    throw StartupError("ACCORD_ADMIN_EMAIL/ACCORD_ADMIN_PASSWORD: \(problem.detail ?? problem.title)")
                }
            }
        case .behind(let reason), .misconfigured(let reason):
            throw StartupError(reason)
        case .unreachable(let reason):
            logger.warning("database unreachable; /readyz answers 503 until it is back", metadata: ["reason": "\(reason)"])
        }
    }
    return (application, hub)
}

/// Runs what `buildApplication` built until SIGTERM or SIGINT: the hub stops first (its sockets get
/// 1001), then the server and the rest.
public func runServer(_ configuration: ServerConfiguration, logger: Logger = Logger(label: "accord")) async throws {
    let (application, hub) = try buildApplication(configuration, logger: logger)
    // The hub ends by itself when the server fails to start (its listener is shut down): that
    // shuts the group down quietly, and the server's own error is what `run` throws.
    let group = ServiceGroup(
        configuration: .init(
            services: [.init(service: application), .init(service: hub, successTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    try await group.run()
}
