/// A worker's unwrapped holder keys: session objects on the worker's own session, least recently used first out.
///
/// A bounded LRU (a dictionary into a doubly linked list kept in arrays, O(1) per operation). An entry is found by
/// credential id and used only if the wrapped key it was unwrapped from (blob, public key and binding: the key's version)
/// is exactly the one the caller read from the credential's row now; the owner destroys every handle the cache gives back (evicted, replaced or removed).
/// Confined to its worker thread: no lock.
struct UnwrappedKeyCache {
    struct Entry {
        var credential: String
        var handle: ObjectHandle
        var wrapped: WrappedKey?
        var previous: Int
        var next: Int
    }

    let capacity: Int
    private var index: [String: Int] = [:]
    private var entries: [Entry] = []
    private var free: [Int] = []
    /// Most and least recently used slots (-1 when empty).
    private var head = -1
    private var tail = -1

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    var count: Int { self.index.count }

    /// The handle for `credential` if cached from this very wrapped key (made the most recent). An entry from another
    /// wrapped key is removed and its handle returned in `stale` for the caller to destroy.
    mutating func lookup(_ credential: String, wrapped: WrappedKey) -> (handle: ObjectHandle?, stale: ObjectHandle?) {
        guard let slot = self.index[credential] else { return (nil, nil) }
        guard self.entries[slot].wrapped == wrapped else { return (nil, self.remove(credential)) }
        self.unlink(slot)
        self.pushFront(slot)
        return (self.entries[slot].handle, nil)
    }

    /// Adds `credential` as the most recent entry; returns the handle evicted to make room (or replaced), if any.
    mutating func insert(_ credential: String, handle: ObjectHandle, wrapped: WrappedKey) -> ObjectHandle? {
        var evicted = self.remove(credential)
        if evicted == nil, self.index.count >= self.capacity, self.tail >= 0 {
            evicted = self.remove(self.entries[self.tail].credential)
        }
        let entry = Entry(credential: credential, handle: handle, wrapped: wrapped, previous: -1, next: -1)
        let slot: Int
        if let reused = self.free.popLast() {
            slot = reused
            self.entries[slot] = entry
        } else {
            slot = self.entries.count
            self.entries.append(entry)
        }
        self.index[credential] = slot
        self.pushFront(slot)
        return evicted
    }

    /// Removes `credential`; returns its handle.
    @discardableResult
    mutating func remove(_ credential: String) -> ObjectHandle? {
        guard let slot = self.index.removeValue(forKey: credential) else { return nil }
        self.unlink(slot)
        self.free.append(slot)
        let handle = self.entries[slot].handle
        self.entries[slot].wrapped = nil
        return handle
    }

    /// Empties the cache; returns every handle.
    mutating func removeAll() -> [ObjectHandle] {
        let handles = self.index.values.map { self.entries[$0].handle }
        self.index.removeAll()
        self.entries.removeAll()
        self.free.removeAll()
        self.head = -1
        self.tail = -1
        return handles
    }

    private mutating func unlink(_ slot: Int) {
        let (previous, next) = (self.entries[slot].previous, self.entries[slot].next)
        if previous >= 0 { self.entries[previous].next = next } else { self.head = next }
        if next >= 0 { self.entries[next].previous = previous } else { self.tail = previous }
        self.entries[slot].previous = -1
        self.entries[slot].next = -1
    }

    private mutating func pushFront(_ slot: Int) {
        self.entries[slot].next = self.head
        self.entries[slot].previous = -1
        if self.head >= 0 { self.entries[self.head].previous = slot }
        self.head = slot
        if self.tail < 0 { self.tail = slot }
    }
}
