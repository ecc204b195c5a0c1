// swift-tools-version:5.9
// Issue 16: the project's base64 (CSCProtocol's Base64Text, linked here by a symbolic link) against
// swift-extras-base64 1.2.0 on what signHash moves. Its own package, so the project does not depend on it:
//   cd Benchmarks/base64-compare && swift build -c release && .build/release/base64-compare
import PackageDescription

let package = Package(
    name: "base64-compare",
    dependencies: [.package(url: "https://github.com/swift-extras/swift-extras-base64", exact: "1.2.0")],
    targets: [.executableTarget(name: "base64-compare", dependencies: [.product(name: "ExtrasBase64", package: "swift-extras-base64")])]
)
