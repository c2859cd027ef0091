// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

/// Tests import what they use without naming every transitive module.
let testSwiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

extension Target.Dependency {
    static let argumentParser = product(name: "ArgumentParser", package: "swift-argument-parser")
    static let deque = product(name: "DequeModule", package: "swift-collections")
    static let httpTypes = product(name: "HTTPTypes", package: "swift-http-types")
    static let hummingbird = product(name: "Hummingbird", package: "hummingbird")
    static let hummingbirdCore = product(name: "HummingbirdCore", package: "hummingbird")
    static let hummingbirdTesting = product(name: "HummingbirdTesting", package: "hummingbird")
    static let hummingbirdWebSocket = product(name: "HummingbirdWebSocket", package: "hummingbird-websocket")
    static let hummingbirdWSClient = product(name: "HummingbirdWSClient", package: "hummingbird-websocket")
    static let logging = product(name: "Logging", package: "swift-log")
    static let metrics = product(name: "Metrics", package: "swift-metrics")
    static let nioExtras = product(name: "NIOExtras", package: "swift-nio-extras")
    static let nioSSL = product(name: "NIOSSL", package: "swift-nio-ssl")
    static let asyncHTTPClient = product(name: "AsyncHTTPClient", package: "async-http-client")
    static let prometheus = product(name: "Prometheus", package: "swift-prometheus")
    static let nioCore = product(name: "NIOCore", package: "swift-nio")
    static let nioPosix = product(name: "NIOPosix", package: "swift-nio")
    static let nioWebSocket = product(name: "NIOWebSocket", package: "swift-nio")
    static let nioHTTP1 = product(name: "NIOHTTP1", package: "swift-nio")
    static let nioHTTPTypes = product(name: "NIOHTTPTypes", package: "swift-nio-extras")
    static let nioHTTPTypesHTTP1 = product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras")
    static let wsCore = product(name: "WSCore", package: "swift-websocket")
    static let serviceLifecycle = product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
    static let unixSignals = product(name: "UnixSignals", package: "swift-service-lifecycle")
}

/// A feature module (Institutions, Directory, Admin, …): it builds on the shared domain layer, the
/// store and the HTTP framework, and never on another feature.
func feature(_ name: String, _ more: [Target.Dependency] = []) -> Target {
    .target(
        name: name,
        dependencies: ["AccordCore", "AccordCrypto", "PGStore", .hummingbird, .httpTypes, .logging, .nioCore] + more,
        swiftSettings: swiftSettings
    )
}

/// The tests of a feature module, on the shared HTTP harness.
func featureTests(_ name: String, _ more: [Target.Dependency] = []) -> Target {
    .testTarget(
        name: name,
        dependencies: ["AccordTesting", "AccordCore", "AccordServer", "PGStore", "PGStoreTesting", .hummingbirdTesting, .httpTypes] + more,
        swiftSettings: testSwiftSettings
    )
}

let package = Package(
    name: "accord",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "accord", targets: ["accord"]),
        .library(name: "PGStore", targets: ["PGStore"]),
        .library(name: "PGStoreTesting", targets: ["PGStoreTesting"]),
        .library(name: "AccordServer", targets: ["AccordServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/hummingbird-project/swift-websocket.git", from: "1.6.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.1.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.4.0"),
    ],
    targets: [
        // System libraries and the store: a library of its own, with no product code beneath it.
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"]), .brew(["libpq"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"]), .brew(["openssl"])]),
        .target(
            name: "PGStore",
            dependencies: ["CLibPQ", "COpenSSL", .logging, .deque, .nioCore, .nioPosix, .serviceLifecycle],
            swiftSettings: swiftSettings
        ),
        .target(name: "PGStoreTesting", dependencies: ["PGStore", .logging], swiftSettings: swiftSettings),
        // What the C library offers that Swift's modules do not (returning free heap memory).
        .target(name: "CAccordSystem"),

        // The shared layer every feature may import.
        .target(name: "AccordCrypto", dependencies: ["COpenSSL"], swiftSettings: swiftSettings),
        .target(
            name: "AccordCore",
            dependencies: ["AccordCrypto", "PGStore", .hummingbird, .httpTypes, .nioCore],
            swiftSettings: swiftSettings
        ),

        // Features: none imports another.
        feature("Institutions", [.nioPosix, .serviceLifecycle]),
        feature("Directory", ["CAccordSystem", .serviceLifecycle]),
        feature("Admin"),
        feature(
            "Rooms",
            [
                .deque, .hummingbirdCore, .hummingbirdWebSocket, .nioHTTP1, .nioHTTPTypes, .nioHTTPTypesHTTP1, .nioWebSocket, .serviceLifecycle,
                .wsCore,
            ]),

        feature("Partnerships", [.serviceLifecycle]),
        feature("Webhooks"),

        // Delivery from the outboxes (mail by SMTP, webhooks): shared infrastructure, no feature.
        .target(
            name: "Delivery",
            dependencies: [
                "AccordCore", "AccordCrypto", "PGStore", .asyncHTTPClient, .logging, .nioCore, .nioExtras, .nioPosix, .nioSSL, .serviceLifecycle,
            ],
            swiftSettings: swiftSettings
        ),

        // The web client: static files, served from `/`, that use only the public API.
        .target(
            name: "WebClient",
            dependencies: [.hummingbird, .httpTypes, .logging],
            resources: [.copy("Resources/web")],
            swiftSettings: swiftSettings
        ),

        // Composition, tools and the executable.
        .target(
            name: "AccordServer",
            dependencies: [
                "AccordCore", "Admin", "Delivery", "Directory", "Institutions", "Partnerships", "PGStore", "Rooms", "Webhooks", "WebClient",
                .hummingbird,
                .hummingbirdCore,
                .hummingbirdWebSocket,
                .httpTypes, .logging, .metrics, .prometheus,
                .nioCore, .serviceLifecycle, .unixSignals,
            ],
            resources: [.copy("Resources/openapi.yaml")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "AccordSeeding",
            dependencies: ["AccordCore", "AccordCrypto", "Institutions", "PGStore"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "accord",
            dependencies: [
                "AccordCore", "AccordCrypto", "AccordSeeding", "AccordServer", "Admin", "Delivery", "Directory", "Institutions", "PGStore", "Rooms",
                "Webhooks",
                .argumentParser,
                .logging,
            ],
            swiftSettings: swiftSettings
        ),

        // Tests.
        .target(
            name: "AccordTesting",
            dependencies: [
                "AccordServer", "AccordCore", "AccordCrypto", "Directory", "Institutions", "PGStore", "PGStoreTesting", "Rooms", "Webhooks",
                .hummingbird,
                .hummingbirdWebSocket,
                .hummingbirdTesting, .httpTypes, .nioCore, .nioPosix, .logging, .serviceLifecycle,
            ],
            path: "Tests/AccordTesting",
            swiftSettings: testSwiftSettings
        ),
        .testTarget(name: "PGStoreTests", dependencies: ["PGStore", "PGStoreTesting"], swiftSettings: testSwiftSettings),
        .testTarget(name: "AccordCryptoTests", dependencies: ["AccordCrypto"], swiftSettings: testSwiftSettings),
        .testTarget(name: "AccordCoreTests", dependencies: ["AccordCore", .httpTypes], swiftSettings: testSwiftSettings),
        .testTarget(
            name: "AccordServerTests",
            dependencies: [
                "AccordServer", "Institutions", "PGStoreTesting", "Rooms", "WebClient", .hummingbirdTesting, .httpTypes, .logging, .nioCore,
            ],
            swiftSettings: testSwiftSettings
        ),
        featureTests("InstitutionsTests", ["AccordCrypto", "Institutions", .logging, .nioCore]),
        featureTests("DirectoryTests", ["AccordSeeding", "Directory", "Institutions"]),
        featureTests("AdminTests", ["Admin", "AccordCrypto", .nioCore]),
        featureTests("RoomsTests", ["Rooms", .hummingbirdWSClient, .logging, .nioCore]),
        featureTests("PartnershipsTests", ["Partnerships", .nioCore]),
        featureTests("OperationsTests", ["AccordCrypto", "Delivery", "Webhooks", .hummingbird, .logging, .nioCore]),
        featureTests("AccordSeedingTests", ["AccordCrypto", "AccordSeeding", "Institutions"]),
        .testTarget(name: "AccordCLITests", dependencies: ["PGStoreTesting"], swiftSettings: testSwiftSettings),
    ]
)
