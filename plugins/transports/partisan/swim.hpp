// The `partisan` overlay's scalable membership (membership = "swim"): a pure, I/O-free core.
// Inputs are frames from members, connection events and the time (an injected clock); outputs
// are "send this frame to that member", "close the connection to that member" and member
// events. partisan.cpp turns them into sockets; test/swim_test.cpp into a simulated network.
//
// What it takes from the literature, and why (docs/overlay-protocol.md, "Scalable membership"):
//  - SWIM (Das, Gupta, Motivala 2002): one probe per protocol period, round robin over a
//    shuffled member list (every member is probed within N periods); no answer within the probe
//    timeout → PROBE_REQ to k other members, which probe on our behalf (a path problem between
//    two members is not a failure); no answer by the period's end → *suspect*, not dead: the
//    suspect refutes by raising its incarnation, which wins over the suspicion.
//  - Lifeguard (Dadgar, Phillips, Currey 2018), as memberlist implements it: local health
//    awareness (a score 0..max_awareness-1 that multiplies probe interval and timeout: raised when
//    our own timer fires late, when relays' nacks do not arrive, when we must refute; lowered by
//    each answered probe), so that a CPU-starved node slows down instead of accusing healthy
//    peers; nacks from relays; suspicion timeouts that start at max and shrink towards
//    min = suspicion_mult * max(1, log10(N+1)) * interval with each independent confirmation
//    (k = suspicion_mult - 2 expected); the "buddy system" (a suspect we probe gets its
//    suspicion with the probe, so it refutes at once).
//  - Dissemination (SWIM, memberlist's TransmitLimitedQueue): every change is queued and
//    piggybacked, fewest-sent first, on the frames that flow anyway (PING, PONG, PROBE_REQ go
//    out with a GOSSIP in the same write), plus a GOSSIP to every neighbour each
//    gossip_interval while the queue is not empty (a flood of the active view: its TCP
//    connections do not lose, so no member depends on random picks); each update goes out in
//    retransmit_mult * ceil(log10(N+1)) frames or rounds. Push/pull anti-entropy (memberlist,
//    Serf): every push_pull_interval a full STATE exchange with one random alive member, and one
//    with a random dead one (Serf's reconnect), so that partitions heal and late joiners catch up.
//    A remote "dead" merged from a STATE only makes the member suspect (it may be a stale view;
//    memberlist does the same).
//  - Dead and left members are kept for dead_retention, so stale gossip cannot resurrect them
//    (only a higher incarnation can: a refutation or a restart).
//  - HyParView (Leitão, Pereira, Rodrigues 2007): an active view of neighbours, the connections
//    actually held, at most max_active, aiming at ceil(log2(N+1)) + 1; NEIGHBOR requests
//    (high priority when we have none: always accepted, evicting a random neighbour with
//    DISCONNECT) and repair from the passive view when a neighbour goes; every
//    push_pull_interval one neighbour is replaced by a random member (what HyParView's shuffle
//    achieves: views that keep mixing, so overlays formed apart join). Every node here knows
//    every member (SWIM's table), so the passive view is that table: HyParView's shuffles exist
//    to learn addresses, which the gossip already delivers.
//  - Probes of members outside the active view travel on a short-lived authenticated
//    connection (partisan.cpp closes it when idle): routing a probe through neighbours would
//    need routes a random graph does not have, and probing only neighbours would leave a member
//    whose neighbours are all on its side of a partition unprobed from the other side. The
//    cost is one handshake per probe period per node (2 round trips, microseconds of HMAC);
//    neighbours are probed over their connection for free. A neighbour whose connection drops
//    is probed next, so a killed member is suspected within one period.
//  - Not yet: Plumtree's eager/lazy broadcast of application payloads. It belongs next to the
//    active view: an application broadcast would go eagerly to neighbours (a tree pruned by
//    duplicates) and lazily (IHAVE) to the rest; the Gossip frame stays for membership only.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "wire.hpp"

namespace clusterd::partisan::swim {

using Time = std::chrono::milliseconds;  // on the caller's monotonic clock
using std::chrono::milliseconds;

struct Config {
  milliseconds probe_interval{1000};
  milliseconds probe_timeout{500};
  milliseconds gossip_interval{200};
  milliseconds push_pull_interval{30000};
  milliseconds dead_retention{3600000};  // then a dead or left member is forgotten
  unsigned indirect_probes = 3;
  unsigned suspicion_mult = 4;
  unsigned suspicion_max_mult = 6;
  unsigned retransmit_mult = 4;
  unsigned max_awareness = 8;
  std::size_t max_active = 8;  // active view bound: the neighbour connections held
  std::size_t max_members = 4096;
};

enum class Status { kAlive, kSuspect, kDead, kLeft };
const char *status_name(Status status);

struct Member {
  std::string name, address;
  std::uint64_t incarnation = 0;
  Status status = Status::kAlive;
  Time changed{};                      // when status last changed
  std::set<std::string> suspected_by;  // independent confirmations of the suspicion
  std::string accuser;                 // the latest of them: what our gossip passes on
};

// What the core asks its caller to do, or tells it.
struct Send {
  std::string to, address;
  wire::Frame frame;
};
struct Event {
  enum Kind { kUp, kSuspect, kAlive, kDown, kLeft } kind;
  std::string node, address, reason;
};

class Membership {
 public:
  Membership(Config config, std::string name, std::string address, std::uint64_t incarnation,
             std::uint64_t seed);

  // ---- inputs ----
  // Runs whatever is due: probes and their timeouts, suspicion timeouts, gossip, push/pull,
  // active view repair, forgetting. Call it often (every few tens of ms).
  void tick(Time now);
  // Joins through `node` at `address` (discovery named it): a STATE exchange with it.
  void join(const std::string &node, const std::string &address, Time now);
  // A frame from member `from` (authenticated by the connection).
  void receive(const std::string &from, const wire::Frame &frame, Time now);
  // The last connection to `node` closed (or a dial to it failed).
  void connection_lost(const std::string &node, Time now);
  // Graceful leave: our LEFT state goes to every neighbour (the caller flushes, then closes).
  void leave(Time now);

  // ---- outputs (taken: the core forgets them) ----
  std::vector<Send> take_sends() { return std::exchange(sends_, {}); }
  std::vector<std::string> take_closes() { return std::exchange(closes_, {}); }
  std::vector<Event> take_events() { return std::exchange(events_, {}); }

  // ---- state ----
  const std::map<std::string, Member> &members() const { return members_; }
  const Member *member(const std::string &name) const;
  bool neighbour(const std::string &node) const { return active_.count(node) > 0; }
  std::vector<std::string> active_view() const;
  std::size_t active_target() const;
  std::uint64_t incarnation() const { return incarnation_; }
  unsigned awareness() const { return awareness_; }
  std::size_t refutations() const { return refutations_; }
  // Alive and suspect members, this node included.
  std::size_t live_count() const { return live_; }

 private:
  struct Probe {
    std::string target;
    std::uint64_t seq = 0;
    Time sent{}, timeout_at{}, deadline{};
    bool indirect = false;
    unsigned nacks_expected = 0, nacks = 0;
  };
  struct Relay {  // a probe we run for another member's PROBE_REQ
    std::string requester, target;
    std::uint64_t their_seq = 0;
    Time deadline{};
  };
  struct Edge {  // an active view entry
    bool established = false;
    Time since{};
  };

  void send(const std::string &to, wire::Frame frame);
  void send_with_gossip(const std::string &to, wire::Frame frame);
  std::string address_of(const std::string &node) const;

  // probes
  void probe_tick(Time now);
  void start_probe(Time now);
  void finish_probe(bool acked, Time now);
  std::optional<std::string> next_probe_target();
  void on_ping(const std::string &from, const wire::Ping &ping, Time now);
  void on_pong(const std::string &from, const wire::Pong &pong, Time now);
  void on_probe_req(const std::string &from, const wire::ProbeReq &req, Time now);
  void on_probe_ack(const wire::ProbeAck &ack, Time now);
  void relay_timeouts(Time now);
  void adjust_awareness(int delta);
  milliseconds scaled(milliseconds d) const { return d * (awareness_ + 1); }

  // member states (SWIM's rules; incarnations order them)
  void apply(const wire::Update &update, const std::string &sender, Time now, bool from_state);
  void on_alive(const wire::Update &u, Time now);
  void on_suspect(const std::string &node, std::uint64_t incarnation, const std::string &from,
                  Time now);
  void on_dead(const std::string &node, std::uint64_t incarnation, Status status,
               const std::string &reason, Time now);
  // The member a suspect, dead or left update is about, or null: this node (which refutes
  // it instead), an unknown member, or an older incarnation than the one we know.
  Member *accused(const std::string &node, std::uint64_t incarnation);
  void refute(std::uint64_t accused_incarnation);
  void suspicion_tick(Time now);
  milliseconds suspicion_timeout(std::size_t confirmations) const;
  void forget_tick(Time now);

  // dissemination
  void queue(const std::string &node);
  void unqueue(const std::string &node);
  std::vector<wire::Update> take_gossip(std::size_t max);
  wire::Update update_of(const std::string &node) const;
  unsigned retransmit_limit() const;
  void gossip_tick(Time now);
  void push_pull_tick(Time now);
  wire::State state_frame(bool reply_wanted, bool join) const;
  void on_state(const std::string &from, const wire::State &state, Time now);

  // active view
  void view_tick(Time now);
  void on_neighbor(const std::string &from, const wire::Neighbor &n, Time now);
  void on_neighbor_reply(const std::string &from, const wire::NeighborReply &r, Time now);
  void drop_neighbour(const std::string &node, bool tell);

  template <class Range>
  std::string pick(const Range &names);

  Config config_;
  std::string name_, address_;
  std::uint64_t incarnation_;
  bool leaving_ = false;
  std::mt19937_64 random_;
  std::map<std::string, Member> members_;  // never this node

  std::optional<Probe> probe_;
  std::vector<std::string> probe_order_;
  std::size_t probe_next_ = 0;
  std::optional<std::string> probe_first_;  // probed next, out of order (its connection dropped)
  std::map<std::uint64_t, Relay> relays_;   // by our seq
  std::uint64_t seq_ = 0;
  unsigned awareness_ = 0;
  std::size_t refutations_ = 0;
  std::size_t live_ = 1;  // alive and suspect members, this node included
  Time next_probe_{}, next_gossip_{}, next_push_pull_{}, next_view_{}, next_housekeeping_{};
  bool started_ = false;

  // The dissemination queue: member → times its current state was sent, and the same pairs
  // ordered least-sent first.
  std::map<std::string, unsigned> broadcasts_;
  std::set<std::pair<unsigned, std::string>> least_sent_;
  std::map<std::string, Edge> active_;
  std::map<std::string, Time> refused_until_;  // neighbours that said no, until then

  std::vector<Send> sends_;
  std::vector<std::string> closes_;
  std::vector<Event> events_;
};

}  // namespace clusterd::partisan::swim
