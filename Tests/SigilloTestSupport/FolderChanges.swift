import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Waits until `condition` holds, checking it at once and again each time a file in `folder` changes (inotify: a file
/// created, written, closed, moved in or deleted there) — e.g. a relay's folder receiving a message, or a database's
/// folder whose write-ahead log grows with each commit. Nothing is polled. `limit` is one generous bound for the whole
/// wait, so that a broken build fails instead of hanging; it is not a timing assumption about a working one.
///
/// - Throws: `TestEventTimeout` when `limit` passes with `condition` still false.
public func waitUntil(_ what: String, changesIn folder: URL, upTo limit: Duration = .seconds(300),
                      _ condition: @Sendable () async throws -> Bool) async throws {
    let descriptor = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
    guard descriptor >= 0 else { throw TestEventTimeout(description: "inotify_init1 failed (errno \(errno))") }
    let mask = UInt32(IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE)
    guard inotify_add_watch(descriptor, folder.path, mask) >= 0 else {
        close(descriptor)
        throw TestEventTimeout(description: "cannot watch \(folder.path) (errno \(errno))")
    }
    // The watch is in place before the first check: no change between the two is missed.
    let (changes, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    let source = DispatchSource.makeReadSource(fileDescriptor: descriptor, queue: DispatchQueue(label: "folder-changes"))
    source.setEventHandler {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while read(descriptor, &buffer, buffer.count) > 0 {}
        continuation.yield()
    }
    source.setCancelHandler { close(descriptor) }
    source.resume()
    let deadline = Task {
        try? await Task.sleep(for: limit)
        continuation.finish()
    }
    defer {
        deadline.cancel()
        continuation.finish()
        source.cancel()
    }
    if try await condition() { return }
    for await _ in changes {
        if try await condition() { return }
    }
    if try await condition() { return }
    throw TestEventTimeout(description: "\(what): not so within \(limit)")
}
