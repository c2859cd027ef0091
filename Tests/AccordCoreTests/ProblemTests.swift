import AccordCore
import Foundation
import HTTPTypes
import Testing

@Suite("Problem details")
struct ProblemTests {
    @Test func bodyFollowsRFC9457() throws {
        let problem = Problem.invalid([.init(field: "/institution/country", message: "must be an ISO 3166-1 alpha-2 code")])
        let data = problem.body(instance: "/v1/registrations", requestID: "r-1")
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["type"] as? String == "urn:accord:problem:validation")
        #expect(object["status"] as? Int == 422)
        #expect(object["title"] as? String == "The request has invalid fields")
        #expect(object["instance"] as? String == "/v1/registrations")
        #expect(object["requestId"] as? String == "r-1")
        let errors = try #require(object["errors"] as? [[String: String]])
        #expect(errors == [["field": "/institution/country", "message": "must be an ISO 3166-1 alpha-2 code"]])
    }

    @Test func responseCarriesTheMediaTypeAndHeaders() {
        let response = Problem.tooManyRequests(retryAfterSeconds: 30).response(instance: "/v1/sessions", requestID: nil)
        #expect(response.status.code == 429)
        #expect(response.headers[.contentType] == "application/problem+json")
        #expect(response.headers[.retryAfter] == "30")
    }

    @Test func internalErrorSaysNothingOfTheCause() throws {
        let data = Problem.internalError.body(instance: "/x", requestID: "id")
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("urn:accord:problem:internal"))
        #expect(!text.contains("errors"))
    }
}
