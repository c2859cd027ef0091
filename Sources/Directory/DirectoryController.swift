import AccordCore
import Foundation
import HTTPTypes
import Hummingbird

/// Routes of the partner directory under /v1/directory.
public struct DirectoryController: Sendable {
    let directory: DirectoryService
    let reference: ReferenceData
    let tiers: Tiers

    public init(directory: DirectoryService, reference: ReferenceData, tiers: Tiers) {
        self.directory = directory
        self.reference = reference
        self.tiers = tiers
    }

    public func addRoutes(to routes: RouterGroup<AuthenticatedContext>) {
        routes.get("directory") { request, context -> DirectoryPage in
            let parameters = request.uri.queryParameters.map { (String($0.key), String($0.value)) }
            let query = try DirectoryQuery.parse(parameters, reference: try await reference.lists())
            if let unknown = try await tiers.unknown(query.tiers).first {
                throw Problem.invalid(field: "tier", "'\(unknown)' is not one of the network's tiers")
            }
            return try await directory.search(query, caller: context.identity)
        }
        routes.get("directory/recommendations") { request, context -> Recommendations in
            var limit = 10
            for (name, value) in request.uri.queryParameters {
                guard name == "limit" else {
                    throw Problem.invalid(field: String(name), "is not a parameter of recommendations (known: limit)")
                }
                guard let number = Int(value), (1...50).contains(number) else { throw Problem.invalid(field: "limit", "must be between 1 and 50") }
                limit = number
            }
            return try await directory.recommendations(caller: context.identity, limit: limit)
        }
    }
}

extension Recommendations: ResponseEncodable {}
