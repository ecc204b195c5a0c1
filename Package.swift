// swift-tools-version:6.1
import PackageDescription

// The modules and their arrows (README "Layout"):
//   CPKCS11 → PKCS11 → SigilloDomain ← SigilloSQLite · SigilloPostgres · SigilloPKI · SigilloMail
//   CSCProtocol ← CSCClient · SigilloServer (all of the above) → sigillo (thin CLI)
//   SigilloBenchSupport (raw PKCS#11 loop, may import CPKCS11) → sigillo-bench
//   sigillo-fuzz (libFuzzer targets of the parsers; `make fuzz`)
let package = Package(
    name: "sigillo",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "sigillo", targets: ["sigillo"]),
        .executable(name: "sigillo-bench", targets: ["sigillo-bench"]),
        // The fuzz targets (`make fuzz`), its own executable, never code in the shipped `sigillo`.
        .executable(name: "sigillo-fuzz", targets: ["sigillo-fuzz"]),
        .library(name: "PKCS11", targets: ["PKCS11"]),
        .library(name: "SigilloDomain", targets: ["SigilloDomain"]),
        .library(name: "SigilloServer", targets: ["SigilloServer"]),
        .library(name: "CSCClient", targets: ["CSCClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // Raw C: PKCS#11 through p11-kit, Argon2 through Debian's libargon2, QR codes through libqrencode.
        .systemLibrary(name: "CPKCS11", pkgConfig: "p11-kit-1", providers: [.apt(["libp11-kit-dev"])]),
        .systemLibrary(name: "CArgon2", pkgConfig: "libargon2", providers: [.apt(["libargon2-dev"])]),
        .systemLibrary(name: "CQRencode", pkgConfig: "libqrencode", providers: [.apt(["libqrencode-dev"])]),

        // Safe Swift wrapper over any vendor's PKCS#11 module. Knows nothing of HTTP or storage.
        .target(name: "PKCS11", dependencies: ["CPKCS11"]),

        // CSC wire types (v1/v2, activation, status), OIDs and the one lenient base64 decoder. Foundation only.
        .target(name: "CSCProtocol"),

        // The domain: use cases by capability and the narrow store protocols they need. No database, network or
        // HTTP library: those are the adapters below.
        .target(
            name: "SigilloDomain",
            dependencies: [
                "PKCS11",
                "CArgon2",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The store on SQLite (GRDB): migrations, records, group commit, the audit chain.
        .target(
            name: "SigilloSQLite",
            dependencies: [
                "SigilloDomain",
                "PKCS11",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        // The same store on PostgreSQL (postgres-nio): for N nodes on one database.
        .target(
            name: "SigilloPostgres",
            dependencies: [
                "SigilloDomain",
                "PKCS11",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // The CA whose key is in the token, CRL, OCSP, CMS/CAdES.
        .target(
            name: "SigilloPKI",
            dependencies: [
                "SigilloDomain",
                "PKCS11",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "X509", package: "swift-certificates"),
            ]
        ),
        // Mail delivery: the SMTP client (SwiftNIO), the outbox dispatcher, the development file transport.
        .target(
            name: "SigilloMail",
            dependencies: [
                "SigilloDomain",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // CMS SignedData: detached CAdES B-B/B-T/B-LT signatures of files (`sigillo sign`), RFC 3161 queries and tokens,
        // OCSP requests and responses, CRLs read back.
        .target(
            name: "SigilloCMS",
            dependencies: [
                "PKCS11",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        // The HTTP client of `sigillo sign`, `activate`, `status` and the bench; local file hashing.
        .target(
            name: "CSCClient",
            dependencies: [
                "CSCProtocol",
                "SigilloCMS",
                "PKCS11",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // The HTTP server as a library, so tests and the benchmark can import it.
        .target(
            name: "SigilloServer",
            dependencies: [
                "SigilloDomain",
                "SigilloSQLite",
                "SigilloPostgres",
                "SigilloPKI",
                "SigilloMail",
                "CSCProtocol",
                "PKCS11",
                "CQRencode",
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            resources: [.copy("Templates")]
        ),
        // The one executable: argument parsing and wiring only.
        .executableTarget(
            name: "sigillo",
            dependencies: [
                "SigilloServer",
                "SigilloPostgres",
                "SigilloDomain",
                "SigilloPKI",
                "SigilloCMS",
                "CSCClient",
                "CSCProtocol",
                "PKCS11",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
            ]
        ),
        // The raw PKCS#11 sign loop of the benchmark: the one target outside PKCS11 that may import CPKCS11.
        .target(
            name: "SigilloBenchSupport",
            dependencies: ["PKCS11", "CPKCS11"],
            path: "Benchmarks/SigilloBenchSupport"
        ),
        // The benchmark, its own executable (never code in the shipped `sigillo`).
        .executableTarget(
            name: "sigillo-bench",
            dependencies: [
                "SigilloBenchSupport",
                "SigilloServer",
                "SigilloDomain",
                "SigilloSQLite",
                "SigilloPostgres",
                "SigilloPKI",
                "SigilloCMS",
                "CSCClient",
                "CSCProtocol",
                "PKCS11",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            path: "Benchmarks/sigillo-bench"
        ),

        // The libFuzzer targets (`make fuzz`; README "Fuzzing"): fuzzed when built with `-sanitize=fuzzer,address
        // -DSIGILLO_FUZZING` into `.build/fuzz`, an input replayer in a normal build. `CLibFuzzer` only declares
        // libFuzzer's driver, which `-sanitize=fuzzer` links in.
        .systemLibrary(name: "CLibFuzzer", path: "Sources/FuzzDriver"),
        .executableTarget(
            name: "sigillo-fuzz",
            dependencies: [
                "CLibFuzzer",
                "CSCProtocol",
                "PKCS11",
                "SigilloDomain",
                "SigilloPKI",
                "SigilloServer",
                "SigilloTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            path: "Sources/SigilloFuzz"
        ),

        // Test fixtures: a fresh SoftHSM token and a fresh folder per test; a domain on a fresh database and CA.
        .target(
            name: "SigilloTestSupport",
            dependencies: [
                "PKCS11", "SigilloDomain", "SigilloSQLite", "SigilloPostgres", "SigilloPKI",
                .product(name: "X509", package: "swift-certificates"),
            ],
            path: "Tests/SigilloTestSupport"
        ),
        .testTarget(
            name: "PKCS11Tests",
            dependencies: [
                "PKCS11", "SigilloTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .testTarget(name: "CSCProtocolTests", dependencies: ["CSCProtocol"]),
        .testTarget(
            name: "CSCClientTests",
            dependencies: ["CSCClient", "CSCProtocol", "PKCS11", "SigilloCMS", "SigilloTestSupport", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(
            name: "SigilloCMSTests",
            dependencies: [
                "SigilloCMS", "CSCClient", "PKCS11", "SigilloTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        .testTarget(
            name: "SigilloDomainTests",
            dependencies: [
                "SigilloDomain", "SigilloSQLite", "SigilloPKI", "SigilloTestSupport", "PKCS11", "CArgon2",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        .testTarget(
            name: "SigilloPKITests",
            dependencies: [
                "SigilloPKI", "SigilloDomain", "SigilloSQLite", "SigilloTestSupport", "PKCS11",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        .testTarget(
            name: "SigilloMailTests",
            dependencies: [
                "SigilloMail", "SigilloDomain", "SigilloSQLite", "SigilloTestSupport",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .testTarget(
            name: "SigilloSQLiteTests",
            dependencies: [
                "SigilloSQLite", "SigilloPostgres", "SigilloDomain", "SigilloTestSupport", "PKCS11",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .testTarget(
            name: "SigilloServerTests",
            dependencies: [
                "SigilloServer", "SigilloDomain", "SigilloSQLite", "SigilloPKI", "SigilloMail", "SigilloCMS", "CSCClient", "CSCProtocol",
                "SigilloTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
