import AccordCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import PGStore

/// Network administration routes under /v1/admin.
public struct AdminController: Sendable {
    let admission: AdmissionService

    public init(admission: AdmissionService) { self.admission = admission }

    public func addRoutes(to routes: RouterGroup<AuthenticatedContext>) {
        routes.get("admin/institutions") { request, context in
            let limit = try Self.limit(request)
            return try await admission.list(status: request.uri.queryParameters.get("status"), limit: limit,
                                            cursor: request.uri.queryParameters.get("cursor"), caller: context.identity)
        }
        for decision in AdmissionService.Decision.allCases {
            routes.post("admin/institutions/{id}/\(decision.rawValue)") { request, context in
                let id = try IdentityController.id(context)
                var reason: String?
                if request.headers[.contentLength].map({ $0 != "0" }) ?? (request.headers[.transferEncoding] != nil) {
                    reason = try await JSONBody.decode(AdmissionService.DecisionRequest.self, from: request, context: context).reason
                }
                return try await admission.decide(decision, on: id, reason: reason, caller: context.identity)
            }
        }
        routes.patch("admin/institutions/{id}") { request, context in
            let body = try await JSONBody.decode(AdmissionService.TierRequest.self, from: request, context: context)
            return try await admission.setTier(body.tier, on: try IdentityController.id(context), caller: context.identity)
        }
        routes.get("admin/audit-events") { request, context in
            try await admission.auditEvents(limit: try Self.limit(request), cursor: request.uri.queryParameters.get("cursor"), caller: context.identity)
        }
    }

    static func limit(_ request: Request) throws -> Int {
        guard let text = request.uri.queryParameters.get("limit") else { return 50 }
        guard let limit = Int(text), (1...100).contains(limit) else { throw Problem.invalid(field: "limit", "must be between 1 and 100") }
        return limit
    }
}

extension AdmissionService.Summary: ResponseEncodable {}
extension AdmissionService.Page: ResponseEncodable {}
