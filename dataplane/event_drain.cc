#include "dataplane/event_drain.h"

#include <rte_ring.h>
#include <rte_ring_elem.h>

namespace exfiltap::dataplane {

bool drain_events(const std::vector<rte_ring*>& rings,
        const std::function<void(const WorkerEvent&)>& on_event, unsigned per_ring) {
    bool any = false;
    WorkerEvent event;
    for (rte_ring* ring : rings) {
        for (unsigned n = 0;
                n < per_ring && rte_ring_dequeue_elem(ring, &event, sizeof(WorkerEvent)) == 0;
                ++n) {
            if (on_event) {
                on_event(event);
            }
            event.finding.value.fill(0);
            any = true;
        }
    }
    return any;
}

}  // namespace exfiltap::dataplane
