// Unit tests of the scalable membership core (swim.cpp, compiled in) on a simulated network:
// N = 50..500 Membership objects in one process, simulated time (no wall-clock waits), frames
// passed through the real wire codec, with message loss, a starved node, killed nodes (their
// connections reset, as a kill -9 does) and a partition that heals (silence, no reset).
// Checked: formation from one seed, detection of failures by every member, no false failures,
// refutation, graceful leave, and the active view's bound.
#include "swim.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace clusterd::partisan::swim {
namespace {

using std::chrono::milliseconds;
constexpr milliseconds kStep{20};  // how often every node's tick() runs

std::string name_of(int i) {
  return "n" + std::to_string(i) + "@10.0.0.1:" + std::to_string(9000 + i);
}

Config test_config() {
  Config c;
  c.probe_interval = milliseconds(500);
  c.probe_timeout = milliseconds(200);
  c.gossip_interval = milliseconds(100);
  c.push_pull_interval = milliseconds(5000);
  c.max_active = 6;
  return c;
}

class Network {
 public:
  struct Seen {
    Event::Kind kind;
    std::string at, node;
  };

  Network(int n, Config config, std::uint64_t seed = 1) : rng_(seed) {
    for (int i = 0; i < n; ++i) {
      const std::string name = name_of(i);
      nodes_[name] =
          std::make_unique<Membership>(config, name, "10.0.0.1:" + std::to_string(9000 + i),
                                       1000 + static_cast<std::uint64_t>(i), seed * 7919 + i);
      names_.push_back(name);
    }
  }

  // Every node but the seed joins through node 0, again every second until it knows it (as
  // the host's reconciler repeats connect()).
  void join_all_through_seed(milliseconds within) {
    const std::string seed = names_[0];
    const Time end = now_ + within;
    while (now_ < end) {
      for (const auto &name : names_) {
        if (name == seed || down_.count(name)) continue;
        Membership &m = *nodes_[name];
        const Member *s = m.member(seed);
        if (!s && (now_.count() % 1000) == 0) {
          m.join(seed, "10.0.0.1:9000", now_);
          collect(name);
        }
      }
      step();
    }
  }

  void run(milliseconds d) {
    const Time end = now_ + d;
    while (now_ < end) step();
  }

  // Runs until `done` holds (true) or `limit` passes (false). `done` is checked every 100 ms
  // of simulated time (it may walk N x N member tables).
  bool run_until(const std::function<bool()> &done, milliseconds limit) {
    const Time end = now_ + limit;
    while (now_ < end) {
      if (now_.count() % 100 == 0 && done()) return true;
      step();
    }
    return done();
  }

  // kill -9: it stops; its connections reset, so the peers that held one notice.
  void kill(const std::string &name) {
    down_.insert(name);
    for (auto it = links_.begin(); it != links_.end();) {
      if (it->first != name && it->second != name) {
        ++it;
        continue;
      }
      const std::string other = it->first == name ? it->second : it->first;
      if (!down_.count(other)) {
        nodes_[other]->connection_lost(name, now_);
        collect(other);
      }
      it = links_.erase(it);
    }
  }

  void leave(const std::string &name) {
    nodes_[name]->leave(now_);
    collect(name);
    flush_after_.insert(name);
  }

  void partition(const std::set<std::string> &side) { side_ = side; }
  void heal() { side_.clear(); }
  void set_loss(double loss) { loss_ = loss; }
  void set_slow(const std::string &name, milliseconds period) {
    slow_ = name;
    slow_period_ = period;
  }

  // Every running node lists every other running node alive, and each of `gone` as `status`.
  bool converged(const std::set<std::string> &gone = {}, Status gone_status = Status::kDead) const {
    const std::size_t live = nodes_.size() - down_.size();
    for (const auto &[name, node] : nodes_)  // the cheap test first: N x N lookups below
      if (!down_.count(name) && node->live_count() != live) return false;
    for (const auto &[name, node] : nodes_) {
      if (down_.count(name)) continue;
      for (const auto &other : names_) {
        if (other == name) continue;
        const Member *m = node->member(other);
        if (gone.count(other)) {
          if (!m || m->status != gone_status) return false;
        } else if (!down_.count(other) && (!m || m->status != Status::kAlive)) {
          return false;
        }
      }
    }
    return true;
  }

  Membership &node(int i) { return *nodes_[names_[i]]; }
  const std::vector<std::string> &names() const { return names_; }
  const std::vector<Seen> &seen() const { return seen_; }
  Time now() const { return now_; }

  std::size_t count_seen(Event::Kind kind, const std::string &node) const {
    return static_cast<std::size_t>(std::count_if(seen_.begin(), seen_.end(), [&](const Seen &s) {
      return s.kind == kind && s.node == node;
    }));
  }

  // The largest active view, and whether the neighbour graph (both directions) is connected.
  std::size_t max_view() const {
    std::size_t most = 0;
    for (const auto &[name, node] : nodes_)
      if (!down_.count(name)) most = std::max(most, node->active_view().size());
    return most;
  }
  bool views_connected() const {
    std::map<std::string, std::set<std::string>> graph;
    for (const auto &[name, node] : nodes_) {
      if (down_.count(name)) continue;
      for (const auto &n : node->active_view()) {
        graph[name].insert(n);
        graph[n].insert(name);
      }
    }
    std::set<std::string> reached{names_[0]};
    std::vector<std::string> todo{names_[0]};
    while (!todo.empty()) {
      const std::string at = todo.back();
      todo.pop_back();
      for (const auto &n : graph[at])
        if (reached.insert(n).second) todo.push_back(n);
    }
    return reached.size() == nodes_.size() - down_.size();
  }

 private:
  struct InFlight {
    Time at;
    std::uint64_t order;
    std::string from, to;
    std::string bytes;  // the encoded frame: every frame crosses the real codec
    bool operator>(const InFlight &o) const {
      return std::tie(at, order) > std::tie(o.at, o.order);
    }
  };

  bool cut(const std::string &a, const std::string &b) const {
    return !side_.empty() && (side_.count(a) > 0) != (side_.count(b) > 0);
  }

  void collect(const std::string &name) {
    Membership &m = *nodes_[name];
    for (Send &s : m.take_sends()) {
      if (s.to == name) ADD_FAILURE() << name << " sends to itself";
      if (down_.count(s.to)) {
        // A dial to a killed node is refused at once.
        if (!dial_failures_.count({name, s.to})) {
          dial_failures_.insert({name, s.to});
          failures_.push_back({name, s.to});
        }
        continue;
      }
      if (cut(name, s.to)) continue;  // silence
      if (loss_ > 0 && std::uniform_real_distribution<double>(0, 1)(rng_) < loss_) continue;
      InFlight f{now_ + milliseconds(1 + rng_() % 5), ++order_, name, s.to, {}};
      wire::encode(s.frame, f.bytes);
      in_flight_.push(std::move(f));
      links_.insert({std::min(name, s.to), std::max(name, s.to)});
    }
    for (const std::string &peer : m.take_closes()) {
      links_.erase({std::min(name, peer), std::max(name, peer)});
      if (!down_.count(peer) && !cut(name, peer)) {
        nodes_[peer]->connection_lost(name, now_);
        collect(peer);
      }
    }
    for (const Event &e : m.take_events()) seen_.push_back({e.kind, name, e.node});
  }

  void deliver(const InFlight &f) {
    if (down_.count(f.to)) return;
    wire::Frame frame;
    std::string error;
    ASSERT_TRUE(wire::decode(std::string_view(f.bytes).substr(4), frame, error)) << error;
    nodes_[f.to]->receive(f.from, frame, now_);
    collect(f.to);
  }

  void step() {
    now_ += kStep;
    for (const auto &[from, to] : std::exchange(failures_, {})) {
      if (down_.count(from)) continue;
      nodes_[from]->connection_lost(to, now_);
      collect(from);
    }
    dial_failures_.clear();
    std::vector<InFlight> held;  // a starved node's frames wait for its next turn
    const bool slow_turn = !slow_.empty() && now_.count() % slow_period_.count() == 0;
    while (!in_flight_.empty() && in_flight_.top().at <= now_) {
      InFlight f = in_flight_.top();
      in_flight_.pop();
      if (f.to == slow_ && !slow_turn) {
        held.push_back(std::move(f));
        continue;
      }
      deliver(f);
    }
    for (auto &f : held) {
      f.at = now_ + kStep;
      in_flight_.push(std::move(f));
    }
    for (const auto &name : names_) {
      if (down_.count(name) || (name == slow_ && !slow_turn)) continue;
      nodes_[name]->tick(now_);
      collect(name);
    }
    for (const auto &name : std::exchange(flush_after_, {})) down_.insert(name);
  }

  std::mt19937_64 rng_;
  Time now_{0};
  std::uint64_t order_ = 0;
  std::map<std::string, std::unique_ptr<Membership>> nodes_;
  std::vector<std::string> names_;
  std::set<std::string> down_, flush_after_;
  std::set<std::pair<std::string, std::string>> links_, dial_failures_;
  std::vector<std::pair<std::string, std::string>> failures_;
  std::priority_queue<InFlight, std::vector<InFlight>, std::greater<>> in_flight_;
  std::set<std::string> side_;
  double loss_ = 0;
  std::string slow_;
  milliseconds slow_period_{0};
  std::vector<Seen> seen_;
};

bool no_false_failures(const Network &net, const std::set<std::string> &really_down) {
  for (const auto &s : net.seen())
    if (s.kind == Event::kDown && !really_down.count(s.node)) {
      ADD_FAILURE() << s.at << " declared " << s.node << " dead";
      return false;
    }
  return true;
}

TEST(SwimCore, FiftyNodesFormFromOneSeed) {
  Network net(50, test_config());
  net.join_all_through_seed(milliseconds(1000));
  EXPECT_TRUE(net.run_until([&] { return net.converged(); }, milliseconds(20000)))
      << "not converged at " << net.now().count() << " ms";
  net.run(milliseconds(5000));  // views settle
  EXPECT_LE(net.max_view(), 6u);
  EXPECT_GE(net.max_view(), 3u);
  EXPECT_TRUE(net.views_connected());
  EXPECT_TRUE(no_false_failures(net, {}));
  for (int i = 0; i < 50; ++i) EXPECT_EQ(net.node(i).live_count(), 50u);
}

TEST(SwimCore, FiveHundredNodesFormAndKeepBoundedViews) {
  Config c = test_config();
  c.max_active = 10;
  Network net(500, c, 3);
  net.join_all_through_seed(milliseconds(1000));
  EXPECT_TRUE(net.run_until([&] { return net.converged(); }, milliseconds(30000)))
      << "not converged at " << net.now().count() << " ms";
  EXPECT_LE(net.max_view(), 10u);
  EXPECT_TRUE(net.views_connected());
  EXPECT_TRUE(no_false_failures(net, {}));
}

TEST(SwimCore, KilledMembersAreDetectedByAll) {
  Network net(50, test_config(), 5);
  net.join_all_through_seed(milliseconds(1000));
  ASSERT_TRUE(net.run_until([&] { return net.converged(); }, milliseconds(20000)));
  const std::set<std::string> killed = {net.names()[3], net.names()[17], net.names()[41]};
  const Time at = net.now();
  for (const auto &k : killed) net.kill(k);
  EXPECT_TRUE(net.run_until([&] { return net.converged(killed); }, milliseconds(30000)));
  // min suspicion = 4 * log10(48) * 500 ms = 3.4 s; max 6x: confirmations must have helped.
  EXPECT_LT((net.now() - at).count(), 15000);
  EXPECT_TRUE(no_false_failures(net, killed));
  EXPECT_LE(net.max_view(), 6u);
  EXPECT_TRUE(net.views_connected());  // repaired from the passive view
}

TEST(SwimCore, LossyNetworkStillFormsAndDetectsWithoutFalseFailures) {
  Network net(50, test_config(), 7);
  net.set_loss(0.05);
  net.join_all_through_seed(milliseconds(3000));
  ASSERT_TRUE(net.run_until([&] { return net.converged(); }, milliseconds(30000)));
  const std::set<std::string> killed = {net.names()[10]};
  net.kill(net.names()[10]);
  EXPECT_TRUE(net.run_until([&] { return net.converged(killed); }, milliseconds(30000)));
  // A lost probe may raise a suspicion; it must be refuted, never end in a false failure.
  net.run(milliseconds(20000));
  EXPECT_TRUE(no_false_failures(net, killed));
  EXPECT_TRUE(net.converged(killed));
}

TEST(SwimCore, StarvedNodeSlowsDownInsteadOfAccusing) {
  Network net(50, test_config(), 9);
  net.join_all_through_seed(milliseconds(1000));
  ASSERT_TRUE(net.run_until([&] { return net.converged(); }, milliseconds(20000)));
  // Node 5 runs only every 1.2 s (longer than the probe interval): its timers are late.
  net.set_slow(net.names()[5], milliseconds(1200));
  unsigned most = 0;
  for (int i = 0; i < 300; ++i) {
    net.run(milliseconds(100));
    most = std::max(most, net.node(5).awareness());
  }
  EXPECT_GT(most, 0u) << "Lifeguard: the starved node noticed";
  EXPECT_TRUE(no_false_failures(net, {}));
}

TEST(SwimCore, PartitionHealsAndSuspicionsAreRefuted) {
  Network net(50, test_config(), 11);
  net.join_all_through_seed(milliseconds(1000));
  ASSERT_TRUE(net.run_until([&] { return net.converged(); }, milliseconds(20000)));
  std::set<std::string> left_side(net.names().begin(), net.names().begin() + 25);
  std::set<std::string> right_side(net.names().begin() + 25, net.names().end());
  net.partition(left_side);
  // Each side declares the other dead.
  auto each_side_sees_the_other_dead = [&] {
    for (int i = 0; i < 50; ++i) {
      const auto &others = i < 25 ? right_side : left_side;
      for (const auto &o : others) {
        const Member *m = net.node(i).member(o);
        if (!m || m->status != Status::kDead) return false;
      }
    }
    return true;
  };
  EXPECT_TRUE(net.run_until(each_side_sees_the_other_dead, milliseconds(60000)));
  for (int i = 0; i < 50; ++i) EXPECT_LE(net.node(i).active_view().size(), 6u);
  std::size_t refuted_before = 0;
  for (int i = 0; i < 50; ++i) refuted_before += net.node(i).refutations();
  net.heal();
  EXPECT_TRUE(net.run_until([&] { return net.converged(); }, milliseconds(60000)))
      << "not healed at " << net.now().count() << " ms";
  std::size_t refuted_after = 0;
  for (int i = 0; i < 50; ++i) refuted_after += net.node(i).refutations();
  EXPECT_GT(refuted_after, refuted_before) << "the healed sides refuted their deaths";
  net.run(milliseconds(10000));  // two view renewals
  EXPECT_TRUE(net.views_connected());
}

TEST(SwimCore, FalseSuspicionIsRefutedWithAHigherIncarnation) {
  Network net(10, test_config(), 13);
  net.join_all_through_seed(milliseconds(1000));
  ASSERT_TRUE(net.run_until([&] { return net.converged(); }, milliseconds(20000)));
  const std::uint64_t before = net.node(4).incarnation();
  // Node 1 claims node 4 is suspect (as a lost probe would make it).
  const Member *m = net.node(1).member(net.names()[4]);
  ASSERT_NE(m, nullptr);
  net.node(2).receive(net.names()[1],
                      wire::Gossip{{{net.names()[4], m->address, m->incarnation,
                                     wire::MemberState::kSuspect, net.names()[1]}}},
                      net.now());
  EXPECT_EQ(net.node(2).member(net.names()[4])->status, Status::kSuspect);
  EXPECT_TRUE(
      net.run_until([&] { return net.node(4).incarnation() > before; }, milliseconds(5000)));
  EXPECT_TRUE(net.run_until([&] { return net.converged(); }, milliseconds(10000)));
  EXPECT_TRUE(no_false_failures(net, {}));
  // A stale "dead" at the old incarnation does not kill it now.
  net.node(3).receive(
      net.names()[1],
      wire::Gossip{{{net.names()[4], m->address, before, wire::MemberState::kDead, {}}}},
      net.now());
  EXPECT_EQ(net.node(3).member(net.names()[4])->status, Status::kAlive);
}

TEST(SwimCore, RelaysProbeOnlyMembersTheyKnowAtTheAddressTheyKnow) {
  Membership m(test_config(), "a@10.0.0.1:1", "10.0.0.1:1", 1, 1);
  const Time now{1000};
  m.receive("b@10.0.0.1:2",
            wire::State{false,
                        false,
                        {{"b@10.0.0.1:2", "10.0.0.1:2", 1, wire::MemberState::kAlive, {}},
                         {"c@10.0.0.1:3", "10.0.0.1:3", 1, wire::MemberState::kAlive, {}}}},
            now);
  m.take_sends();
  // Unknown target: nacked at once, nothing dialed.
  m.receive("b@10.0.0.1:2", wire::ProbeReq{7, "x@192.0.2.1:22", "192.0.2.1:22"}, now);
  auto sends = m.take_sends();
  ASSERT_EQ(sends.size(), 1u);
  EXPECT_EQ(sends[0].to, "b@10.0.0.1:2");
  EXPECT_EQ(sends[0].frame, wire::Frame(wire::ProbeAck{7, true}));
  // Known target: probed at its own address, whatever the request says; its PONG is relayed,
  // a PONG from anyone else is not.
  m.receive("b@10.0.0.1:2", wire::ProbeReq{8, "c@10.0.0.1:3", "192.0.2.1:22"}, now);
  sends = m.take_sends();
  ASSERT_FALSE(sends.empty());
  EXPECT_EQ(sends[0].to, "c@10.0.0.1:3");
  EXPECT_EQ(sends[0].address, "10.0.0.1:3");
  const auto *ping = std::get_if<wire::Ping>(&sends[0].frame);
  ASSERT_NE(ping, nullptr);
  m.receive("b@10.0.0.1:2", wire::Pong{ping->id, ping->sent_ns}, now);
  EXPECT_TRUE(m.take_sends().empty());
  m.receive("c@10.0.0.1:3", wire::Pong{ping->id, ping->sent_ns}, now);
  sends = m.take_sends();
  ASSERT_EQ(sends.size(), 1u);
  EXPECT_EQ(sends[0].frame, wire::Frame(wire::ProbeAck{8, false}));
}

TEST(SwimCore, GracefulLeaveIsLeftNotDead) {
  Network net(20, test_config(), 17);
  net.join_all_through_seed(milliseconds(1000));
  ASSERT_TRUE(net.run_until([&] { return net.converged(); }, milliseconds(20000)));
  const std::string leaver = net.names()[7];
  net.leave(leaver);
  EXPECT_TRUE(
      net.run_until([&] { return net.converged({leaver}, Status::kLeft); }, milliseconds(10000)));
  EXPECT_EQ(net.count_seen(Event::kDown, leaver), 0u);
  EXPECT_EQ(net.count_seen(Event::kLeft, leaver), 19u);
}

TEST(SwimCore, SuspicionTimeoutShrinksWithConfirmations) {
  // memberlist's bounds: min = mult * log10(N+1) * interval, max = max_mult * min.
  Network net(100, test_config(), 19);
  net.join_all_through_seed(milliseconds(1000));
  ASSERT_TRUE(net.run_until([&] { return net.converged(); }, milliseconds(20000)));
  net.set_loss(0);
  const std::string target = net.names()[50];
  Membership &observer = net.node(1);
  const Member *t = observer.member(target);
  auto suspect_from = [&](int who) {
    observer.receive(net.names()[who],
                     wire::Gossip{{{target, t->address, t->incarnation, wire::MemberState::kSuspect,
                                    net.names()[who]}}},
                     net.now());
  };
  // 4 * log10(101) * 500 = 4008 ms at least, 24 s at most; 2 confirmations reach the minimum.
  net.kill(target);
  suspect_from(2);
  suspect_from(3);
  suspect_from(4);
  const Time start = net.now();
  ASSERT_TRUE(net.run_until([&] { return observer.member(target)->status == Status::kDead; },
                            milliseconds(30000)));
  EXPECT_GE((net.now() - start).count(), 4000);
  EXPECT_LE((net.now() - start).count(), 6000);
}

}  // namespace
}  // namespace clusterd::partisan::swim
