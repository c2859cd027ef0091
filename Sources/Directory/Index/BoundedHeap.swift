import Foundation

extension DirectoryIndex {
    /// The order a `BoundedHeap` keeps: which of two elements is worse.
    protocol HeapOrder {
        associatedtype Element
        func isWorse(_ a: Element, than b: Element) -> Bool
    }

    /// The `capacity` best elements offered (by `Order`), the worst of them on top: a page's
    /// candidates out of any number of matches, in O(n log capacity).
    struct BoundedHeap<Order: HeapOrder> {
        let capacity: Int
        let order: Order
        private(set) var elements: [Order.Element] = []

        init(capacity: Int, order: Order) {
            self.capacity = max(0, capacity)
            self.order = order
            elements.reserveCapacity(self.capacity)
        }

        var isFull: Bool { elements.count >= capacity }
        /// The worst element kept (the heap must not be empty).
        var worst: Order.Element { elements[0] }

        mutating func offer(_ element: Order.Element) {
            guard capacity > 0 else { return }
            if elements.count < capacity {
                elements.append(element)
                var child = elements.count - 1
                while child > 0 {
                    let parent = (child - 1) / 2
                    guard order.isWorse(elements[child], than: elements[parent]) else { break }
                    elements.swapAt(child, parent)
                    child = parent
                }
                return
            }
            guard order.isWorse(elements[0], than: element) else { return }
            elements[0] = element
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var worst = parent
                if left < elements.count, order.isWorse(elements[left], than: elements[worst]) { worst = left }
                if right < elements.count, order.isWorse(elements[right], than: elements[worst]) { worst = right }
                guard worst != parent else { break }
                elements.swapAt(parent, worst)
                parent = worst
            }
        }
    }

    /// Larger numbers are better.
    struct Larger: HeapOrder {
        func isWorse(_ a: Double, than b: Double) -> Bool { a < b }
    }

    /// Higher ranks are better, then smaller ids (PostgreSQL's `ORDER BY rank DESC, id`).
    struct ByRankThenID: HeapOrder {
        let ids: [UUID]
        func isWorse(_ a: (rank: Double, slot: Int32), than b: (rank: Double, slot: Int32)) -> Bool {
            a.rank < b.rank || (a.rank == b.rank && Store.precedes(ids[Int(b.slot)], ids[Int(a.slot)]))
        }
    }

    /// Slots of smaller ids are better (PostgreSQL's uuid order).
    struct BySmallerID: HeapOrder {
        let ids: [UUID]
        func isWorse(_ a: Int32, than b: Int32) -> Bool { Store.precedes(ids[Int(b)], ids[Int(a)]) }
    }
}
