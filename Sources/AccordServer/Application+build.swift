import AccordCore
import Foundation
import Hummingbird
import Logging
import PGStore

/// What `accord serve` needs: where to listen, the database, and the migration files.
public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var database: PGConfiguration
    public var schemaDirectory: URL

    public init(host: String = "127.0.0.1", port: Int = 8080, database: PGConfiguration, schemaDirectory: URL) {
        self.host = host
        self.port = port
        self.database = database
        self.schemaDirectory = schemaDirectory
    }
}

/// A start-up failure with one line for the operator.
public struct StartupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Builds the router: middleware, then every feature's routes. Tests call this too.
public func buildRouter(pool: PGPool, schemaCheck: SchemaCheck, logger: Logger = Logger(label: "accord")) -> Router<AccordRequestContext> {
    let router = Router(context: AccordRequestContext.self)
    router.add(middleware: RequestLogMiddleware())
    router.add(middleware: ProblemMiddleware())
    HealthController(schemaCheck: schemaCheck, logger: logger).addRoutes(to: router)
    return router
}

/// Builds the Accord application: the HTTP server with its router, and the database pool as a
/// service of the same `ServiceGroup`. Before serving it checks the database: a schema that is
/// behind, or credentials the database refuses, stop start-up with one clear line; an unreachable
/// database only makes `/readyz` answer 503 until it is back.
public func buildApplication(
    _ configuration: ServerConfiguration,
    logger: Logger = Logger(label: "accord")
) throws -> some ApplicationProtocol {
    let migrations = try Migration.load(from: configuration.schemaDirectory)
    let pool = PGPool(configuration: configuration.database, logger: logger)
    let schemaCheck = SchemaCheck(migrations: migrations, pool: pool)
    let router = buildRouter(pool: pool, schemaCheck: schemaCheck, logger: logger)
    var application = Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "accord"),
        services: [pool],
        logger: logger
    )
    application.beforeServerStarts {
        switch await schemaCheck.check() {
        case .current(let count):
            logger.info("database schema is current", metadata: ["migrations": "\(count)"])
        case .behind(let reason), .misconfigured(let reason):
            throw StartupError(reason)
        case .unreachable(let reason):
            logger.warning("database unreachable; /readyz answers 503 until it is back", metadata: ["reason": "\(reason)"])
        }
    }
    return application
}
