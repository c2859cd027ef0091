// swift-tools-version:6.1
// Benchmarks for PGStore, kept out of the root package so that the product never links postgres-nio.
// Run with `./run` (or `make bench` from the repository root); see README.md.
import PackageDescription

let package = Package(
    name: "accord-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "accord", path: ".."),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
    ],
    targets: [
        .executableTarget(
            name: "pgstore-bench",
            dependencies: [
                .product(name: "PGStore", package: "accord"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
        )
    ]
)
