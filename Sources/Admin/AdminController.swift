import AccordCore
import Foundation
import HTTPTypes
import Hummingbird

/// Network administration routes under /v1/admin.
public struct AdminController: Sendable {
    let admission: AdmissionService

    public init(admission: AdmissionService) { self.admission = admission }

    public func addRoutes(to routes: RouterGroup<AdminContext>) {
        routes.get("admin/institutions") { request, context in
            let parameters = request.uri.queryParameters
            let status = try parameters.get("status").map { text in
                guard let status = InstitutionStatus(rawValue: text) else {
                    throw Problem.invalid(field: "status", "must be pending, active, rejected or suspended")
                }
                return status
            }
            return try await admission.list(
                status: status, limit: try Limit.parse(parameters.get("limit"), default: 50), cursor: parameters.get("cursor"),
                caller: context.identity)
        }
        for decision in AdmissionService.Decision.allCases {
            routes.post("admin/institutions/{id}/\(decision.rawValue)") { request, context in
                let id = try context.pathID()
                var reason: String?
                if request.headers[.contentLength].map({ $0 != "0" }) ?? (request.headers[.transferEncoding] != nil) {
                    reason = try await JSONBody.decode(DecisionRequest.self, from: request, context: context).reason
                }
                return try await admission.decide(decision, on: id, reason: reason, caller: context.identity)
            }
        }
        routes.get("admin/institutions/{id}") { _, context in
            try await admission.institution(try context.pathID(), caller: context.identity)
        }
        routes.patch("admin/institutions/{id}") { request, context in
            let body = try await JSONBody.decode(TierRequest.self, from: request, context: context)
            return try await admission.setTier(body.tier, on: try context.pathID(), caller: context.identity)
        }
        routes.get("admin/audit-events") { request, context in
            let parameters = request.uri.queryParameters
            return try await admission.auditEvents(
                limit: try Limit.parse(parameters.get("limit"), default: 50), cursor: parameters.get("cursor"), caller: context.identity)
        }
    }
}

extension InstitutionSummary: ResponseEncodable {}
