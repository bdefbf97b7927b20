#include "swim.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

namespace clusterd::partisan::swim {
namespace {

constexpr std::size_t kGossipPerFrame = 32;  // updates piggybacked on one frame
constexpr std::size_t kMaxRelays = 64;       // probes run for others at once
constexpr std::size_t kMaxPendingNeighbours = 2;

bool live(Status s) {
  return s == Status::kAlive || s == Status::kSuspect;
}

wire::MemberState wire_state(Status s) {
  switch (s) {
    case Status::kAlive:
      return wire::MemberState::kAlive;
    case Status::kSuspect:
      return wire::MemberState::kSuspect;
    case Status::kDead:
      return wire::MemberState::kDead;
    case Status::kLeft:
      return wire::MemberState::kLeft;
  }
  return wire::MemberState::kAlive;
}

std::uint64_t ns_of(Time t) {
  return static_cast<std::uint64_t>(t.count()) * 1'000'000;
}

}  // namespace

const char *status_name(Status status) {
  switch (status) {
    case Status::kAlive:
      return "alive";
    case Status::kSuspect:
      return "suspect";
    case Status::kDead:
      return "dead";
    case Status::kLeft:
      return "left";
  }
  return "?";
}

Membership::Membership(Config config, std::string name, std::string address,
                       std::uint64_t incarnation, std::uint64_t seed)
    : config_(config),
      name_(std::move(name)),
      address_(std::move(address)),
      incarnation_(incarnation),
      random_(seed) {}

const Member *Membership::member(const std::string &name) const {
  auto it = members_.find(name);
  return it == members_.end() ? nullptr : &it->second;
}

std::vector<std::string> Membership::active_view() const {
  std::vector<std::string> out;
  for (const auto &[node, edge] : active_)
    if (edge.established) out.push_back(node);
  return out;
}

// HyParView's log(N) + c, with the configured bound.
std::size_t Membership::active_target() const {
  const std::size_t n = live_count();
  const auto want = static_cast<std::size_t>(std::ceil(std::log2(static_cast<double>(n + 1)))) + 1;
  return std::min({config_.max_active, want, n - 1});
}

template <class Range>
std::string Membership::pick(const Range &names) {
  if (names.empty()) return {};
  std::uniform_int_distribution<std::size_t> d(0, names.size() - 1);
  return names[d(random_)];
}

std::string Membership::address_of(const std::string &node) const {
  const Member *m = member(node);
  return m ? m->address : std::string();
}

void Membership::send(const std::string &to, wire::Frame frame) {
  sends_.push_back({to, address_of(to), std::move(frame)});
}

// `frame`, then what the dissemination queue holds (SWIM's piggybacking: the caller writes both
// at once). A suspect we talk to gets its suspicion too (Lifeguard's buddy system).
void Membership::send_with_gossip(const std::string &to, wire::Frame frame) {
  send(to, std::move(frame));
  std::vector<wire::Update> updates = take_gossip(kGossipPerFrame);
  const Member *m = member(to);
  if (m && m->status == Status::kSuspect &&
      std::none_of(updates.begin(), updates.end(),
                   [&](const wire::Update &u) { return u.node == to; }))
    updates.push_back(update_of(to));
  if (!updates.empty()) send(to, wire::Gossip{std::move(updates)});
}

// ---- inputs ----

void Membership::tick(Time now) {
  if (!started_) {
    started_ = true;
    next_probe_ = next_gossip_ = next_view_ = next_housekeeping_ = now;
    next_push_pull_ = now + config_.push_pull_interval;
  }
  if (leaving_) return;
  probe_tick(now);
  relay_timeouts(now);
  view_tick(now);
  gossip_tick(now);
  push_pull_tick(now);
  if (now >= next_housekeeping_) {  // both walk every member: not on every tick
    next_housekeeping_ = now + config_.gossip_interval;
    suspicion_tick(now);
    forget_tick(now);
  }
}

void Membership::join(const std::string &node, const std::string &address, Time now) {
  if (node == name_ || leaving_) return;
  if (const Member *m = member(node); m && live(m->status)) return;
  sends_.push_back({node, address, state_frame(true, true)});
  if (active_view().empty() && !active_.count(node)) {
    active_[node] = Edge{false, now};
    sends_.push_back({node, address, wire::Neighbor{true}});
  }
}

void Membership::receive(const std::string &from, const wire::Frame &frame, Time now) {
  if (auto *ping = std::get_if<wire::Ping>(&frame)) return on_ping(from, *ping, now);
  if (auto *pong = std::get_if<wire::Pong>(&frame)) return on_pong(from, *pong, now);
  if (auto *req = std::get_if<wire::ProbeReq>(&frame)) return on_probe_req(from, *req, now);
  if (auto *ack = std::get_if<wire::ProbeAck>(&frame)) return on_probe_ack(*ack, now);
  if (auto *gossip = std::get_if<wire::Gossip>(&frame)) {
    for (const wire::Update &u : gossip->updates) apply(u, from, now, false);
    return;
  }
  if (auto *state = std::get_if<wire::State>(&frame)) return on_state(from, *state, now);
  if (auto *n = std::get_if<wire::Neighbor>(&frame)) return on_neighbor(from, *n, now);
  if (auto *r = std::get_if<wire::NeighborReply>(&frame)) return on_neighbor_reply(from, *r, now);
  if (std::holds_alternative<wire::Disconnect>(frame)) active_.erase(from);
}

void Membership::connection_lost(const std::string &node, Time) {
  const bool was_neighbour = active_.erase(node) > 0;
  const Member *m = member(node);
  // Its neighbours are who probes it most: a killed member would otherwise wait for its turn
  // in everyone's round robin.
  if (was_neighbour && m && live(m->status)) probe_first_ = node;
}

void Membership::leave(Time) {
  if (leaving_) return;
  leaving_ = true;
  queue(name_);
  for (const auto &[node, edge] : active_) send(node, wire::Gossip{{update_of(name_)}});
}

// ---- probes (SWIM, Lifeguard) ----

void Membership::probe_tick(Time now) {
  if (probe_) {
    Probe &p = *probe_;
    if (!p.indirect && now >= p.timeout_at) {
      // Ask k others to probe it: neighbours first (their connections are open).
      p.indirect = true;
      std::vector<std::string> relays;
      for (const auto &node : active_view())
        if (node != p.target) relays.push_back(node);
      std::shuffle(relays.begin(), relays.end(), random_);
      if (relays.size() < config_.indirect_probes) {
        std::vector<std::string> others;
        for (const auto &[name, m] : members_)
          if (m.status == Status::kAlive && name != p.target && !active_.count(name))
            others.push_back(name);
        std::shuffle(others.begin(), others.end(), random_);
        relays.insert(relays.end(), others.begin(), others.end());
      }
      relays.resize(std::min<std::size_t>(relays.size(), config_.indirect_probes));
      for (const auto &relay : relays) {
        send_with_gossip(relay, wire::ProbeReq{p.seq, p.target, address_of(p.target)});
        ++p.nacks_expected;
      }
    }
    if (now < p.deadline) return;
    finish_probe(false, now);
  }
  if (now < next_probe_) return;
  // Lifeguard: our own timer fired late, so this node is starved; slow down before blaming.
  if (now - next_probe_ > config_.probe_interval / 2) adjust_awareness(+1);
  next_probe_ = now + scaled(config_.probe_interval);
  start_probe(now);
}

std::optional<std::string> Membership::next_probe_target() {
  if (auto first = std::exchange(probe_first_, std::nullopt)) {
    if (const Member *m = member(*first); m && live(m->status)) return first;
  }
  for (int round = 0; round < 2; ++round) {
    while (probe_next_ < probe_order_.size()) {
      const std::string &node = probe_order_[probe_next_++];
      if (const Member *m = member(node); m && live(m->status)) return node;
    }
    // A new round over a fresh shuffle (SWIM's round robin: each member within N periods).
    probe_order_.clear();
    for (const auto &[name, m] : members_)
      if (live(m.status)) probe_order_.push_back(name);
    std::shuffle(probe_order_.begin(), probe_order_.end(), random_);
    probe_next_ = 0;
  }
  return std::nullopt;
}

void Membership::start_probe(Time now) {
  auto target = next_probe_target();
  if (!target) return;
  Probe p;
  p.target = *target;
  p.seq = ++seq_;
  p.sent = now;
  p.timeout_at = now + scaled(config_.probe_timeout);
  p.deadline = now + scaled(config_.probe_interval);
  probe_ = p;
  send_with_gossip(p.target, wire::Ping{p.seq, ns_of(now)});
}

void Membership::finish_probe(bool acked, Time now) {
  const Probe p = *std::exchange(probe_, std::nullopt);
  if (acked) return adjust_awareness(-1);
  // Lifeguard: relays that did not even nack suggest the fault is ours.
  adjust_awareness(p.nacks_expected > 0 ? static_cast<int>(p.nacks_expected - p.nacks) : 1);
  // Suspect, or confirm someone else's suspicion: an independent one shortens its timeout.
  if (const Member *m = member(p.target); m && live(m->status))
    on_suspect(p.target, m->incarnation, name_, now);
}

void Membership::adjust_awareness(int delta) {
  const int next = std::clamp(static_cast<int>(awareness_) + delta, 0,
                              static_cast<int>(config_.max_awareness) - 1);
  awareness_ = static_cast<unsigned>(next);
}

void Membership::on_ping(const std::string &from, const wire::Ping &ping, Time) {
  send_with_gossip(from, wire::Pong{ping.id, ping.sent_ns});
}

void Membership::on_pong(const std::string &from, const wire::Pong &pong, Time now) {
  if (probe_ && pong.id == probe_->seq && from == probe_->target) return finish_probe(true, now);
  auto relay = relays_.find(pong.id);
  if (relay == relays_.end() || relay->second.target != from) return;
  send(relay->second.requester, wire::ProbeAck{relay->second.their_seq, false});
  relays_.erase(relay);
}

void Membership::on_probe_req(const std::string &from, const wire::ProbeReq &req, Time now) {
  if (req.target == name_) return send(from, wire::ProbeAck{req.seq, false});
  // Only a member we know, at the address we know: a peer cannot make us dial anywhere.
  const Member *m = member(req.target);
  if (relays_.size() >= kMaxRelays || !m || !live(m->status))
    return send(from, wire::ProbeAck{req.seq, true});
  const std::uint64_t seq = ++seq_;
  relays_[seq] = Relay{from, req.target, req.seq, now + scaled(config_.probe_timeout)};
  send(req.target, wire::Ping{seq, ns_of(now)});
}

void Membership::on_probe_ack(const wire::ProbeAck &ack, Time now) {
  if (!probe_ || ack.seq != probe_->seq) return;
  if (!ack.nack) return finish_probe(true, now);
  ++probe_->nacks;
}

void Membership::relay_timeouts(Time now) {
  for (auto it = relays_.begin(); it != relays_.end();) {
    if (now < it->second.deadline) {
      ++it;
      continue;
    }
    send(it->second.requester, wire::ProbeAck{it->second.their_seq, true});
    it = relays_.erase(it);
  }
}

// ---- member states ----

void Membership::apply(const wire::Update &u, const std::string &sender, Time now,
                       bool from_state) {
  if (u.node.empty()) return;
  switch (u.state) {
    case wire::MemberState::kAlive:
      return on_alive(u, now);
    case wire::MemberState::kSuspect:
      return on_suspect(u.node, u.incarnation, u.from.empty() ? sender : u.from, now);
    case wire::MemberState::kDead:
      // A whole table's "dead" may be a stale view (the far side of a healed partition): the
      // member gets a chance to refute instead (memberlist does the same).
      if (from_state) return on_suspect(u.node, u.incarnation, sender, now);
      return on_dead(u.node, u.incarnation, Status::kDead, "declared dead by " + sender, now);
    case wire::MemberState::kLeft:
      return on_dead(u.node, u.incarnation, Status::kLeft, "left", now);
  }
}

void Membership::on_alive(const wire::Update &u, Time now) {
  if (u.node == name_) return;  // only this node speaks for itself
  auto it = members_.find(u.node);
  if (it == members_.end()) {
    if (members_.size() >= config_.max_members || u.address.empty()) return;
    Member m;
    m.name = u.node;
    m.address = u.address;
    m.incarnation = u.incarnation;
    m.changed = now;
    members_.emplace(u.node, std::move(m));
    ++live_;
    queue(u.node);
    events_.push_back({Event::kUp, u.node, u.address, {}});
    return;
  }
  Member &m = it->second;
  if (u.incarnation <= m.incarnation) return;
  const Status was = m.status;
  m.incarnation = u.incarnation;
  if (!u.address.empty()) m.address = u.address;
  m.status = Status::kAlive;
  m.changed = now;
  m.suspected_by.clear();
  queue(u.node);
  live_ += !live(was);
  if (!live(was))
    events_.push_back({Event::kUp, u.node, m.address, {}});
  else if (was == Status::kSuspect)
    events_.push_back({Event::kAlive, u.node, m.address, "refuted the suspicion"});
}

Member *Membership::accused(const std::string &node, std::uint64_t incarnation) {
  if (node == name_) {
    if (!leaving_) refute(incarnation);
    return nullptr;
  }
  auto it = members_.find(node);
  if (it == members_.end() || incarnation < it->second.incarnation) return nullptr;
  return &it->second;
}

void Membership::on_suspect(const std::string &node, std::uint64_t incarnation,
                            const std::string &from, Time now) {
  Member *accused_member = accused(node, incarnation);
  if (!accused_member || !live(accused_member->status)) return;
  Member &m = *accused_member;
  if (m.status == Status::kSuspect) {
    // An independent confirmation shortens the timeout; passed on like any news.
    if (m.suspected_by.insert(from).second) {
      m.accuser = from;
      queue(node);
    }
    return;
  }
  m.incarnation = incarnation;
  m.status = Status::kSuspect;
  m.changed = now;
  m.suspected_by = {from};
  m.accuser = from;
  queue(node);
  events_.push_back({Event::kSuspect, node, m.address, "suspected by " + from});
}

void Membership::on_dead(const std::string &node, std::uint64_t incarnation, Status status,
                         const std::string &reason, Time now) {
  Member *accused_member = accused(node, incarnation);
  if (!accused_member || accused_member->status == Status::kLeft) return;
  Member &m = *accused_member;
  if (m.status == Status::kDead && status == Status::kDead) return;
  const bool was_live = live(m.status);
  m.status = status;
  m.incarnation = incarnation;
  m.changed = now;
  m.suspected_by.clear();
  queue(node);
  live_ -= was_live;
  if (active_.erase(node)) closes_.push_back(node);
  if (was_live)
    events_.push_back(
        {status == Status::kLeft ? Event::kLeft : Event::kDown, node, m.address, reason});
}

void Membership::refute(std::uint64_t accused_incarnation) {
  incarnation_ = std::max(incarnation_, accused_incarnation) + 1;
  ++refutations_;
  adjust_awareness(+1);  // Lifeguard: being accused hints that we are the slow one
  queue(name_);
}

milliseconds Membership::suspicion_timeout(std::size_t confirmations) const {
  const std::size_t n = live_count();
  const double scale = std::max(1.0, std::log10(static_cast<double>(n + 1)));
  const double min =
      config_.suspicion_mult * scale * static_cast<double>(config_.probe_interval.count());
  const double max = config_.suspicion_max_mult * min;
  std::size_t k = config_.suspicion_mult > 2 ? config_.suspicion_mult - 2 : 0;
  k = std::min(k, n > 2 ? n - 2 : 0);
  if (k == 0) return milliseconds(static_cast<std::int64_t>(min));
  const double fraction =
      std::log(static_cast<double>(confirmations) + 1) / std::log(static_cast<double>(k) + 1);
  return milliseconds(static_cast<std::int64_t>(std::max(min, max - fraction * (max - min))));
}

void Membership::suspicion_tick(Time now) {
  std::vector<std::pair<std::string, std::uint64_t>> expired;
  std::vector<std::string> reasons;
  for (const auto &[name, m] : members_) {
    if (m.status != Status::kSuspect) continue;
    const milliseconds timeout = suspicion_timeout(m.suspected_by.size() - 1);
    if (now - m.changed < timeout) continue;
    expired.emplace_back(name, m.incarnation);
    reasons.push_back("suspected by " + std::to_string(m.suspected_by.size()) +
                      " member(s), not refuted within " + std::to_string(timeout.count()) + " ms");
  }
  for (std::size_t i = 0; i < expired.size(); ++i)
    on_dead(expired[i].first, expired[i].second, Status::kDead, reasons[i], now);
}

void Membership::forget_tick(Time now) {
  for (auto it = members_.begin(); it != members_.end();) {
    if (live(it->second.status) || now - it->second.changed < config_.dead_retention) {
      ++it;
      continue;
    }
    unqueue(it->first);
    refused_until_.erase(it->first);
    it = members_.erase(it);
  }
}

// ---- dissemination ----

unsigned Membership::retransmit_limit() const {
  const double n = static_cast<double>(live_count());
  return config_.retransmit_mult * static_cast<unsigned>(std::ceil(std::log10(n + 1)));
}

wire::Update Membership::update_of(const std::string &node) const {
  if (node == name_)
    return {name_,
            address_,
            incarnation_,
            leaving_ ? wire::MemberState::kLeft : wire::MemberState::kAlive,
            {}};
  const Member &m = members_.at(node);
  return {m.name, m.address, m.incarnation, wire_state(m.status),
          m.status == Status::kSuspect ? m.accuser : std::string()};
}

void Membership::queue(const std::string &node) {
  unqueue(node);
  broadcasts_[node] = 0;
  least_sent_.emplace(0, node);
}

void Membership::unqueue(const std::string &node) {
  auto it = broadcasts_.find(node);
  if (it == broadcasts_.end()) return;
  least_sent_.erase({it->second, node});
  broadcasts_.erase(it);
}

// memberlist's TransmitLimitedQueue: the least-sent updates first; each is dropped after
// retransmit_limit() sends.
std::vector<wire::Update> Membership::take_gossip(std::size_t max) {
  std::vector<std::pair<unsigned, std::string>> taken;
  for (auto it = least_sent_.begin(); it != least_sent_.end() && taken.size() < max; ++it)
    taken.push_back(*it);
  const unsigned limit = retransmit_limit();
  std::vector<wire::Update> updates;
  for (auto &[sent, node] : taken) {
    updates.push_back(update_of(node));
    least_sent_.erase({sent, node});
    if (sent + 1 >= limit) {
      broadcasts_.erase(node);
    } else {
      broadcasts_[node] = sent + 1;
      least_sent_.emplace(sent + 1, node);
    }
  }
  return updates;
}

void Membership::gossip_tick(Time now) {
  if (now < next_gossip_) return;
  next_gossip_ = now + config_.gossip_interval;
  std::vector<wire::Update> updates = take_gossip(kGossipPerFrame);
  if (updates.empty()) return;
  // To every neighbour, not to a random few: the connections are reliable, so each round
  // floods the active view and no member depends on random picks to hear of a change (with
  // three picks among six neighbours a member missed one update in thousands, and then waited
  // for the next push/pull).
  const wire::Frame gossip = wire::Gossip{std::move(updates)};
  for (const std::string &node : active_view()) send(node, gossip);
}

wire::State Membership::state_frame(bool reply_wanted, bool join) const {
  wire::State state;
  state.reply_wanted = reply_wanted;
  state.join = join;
  state.members.push_back(update_of(name_));
  for (const auto &[name, m] : members_) {
    if (state.members.size() >= wire::kMaxStateMembers) break;
    state.members.push_back(update_of(name));
  }
  return state;
}

void Membership::push_pull_tick(Time now) {
  if (now < next_push_pull_) return;
  next_push_pull_ = now + config_.push_pull_interval;
  std::vector<std::string> alive, dead;
  for (const auto &[name, m] : members_) {
    if (m.status == Status::kAlive) alive.push_back(name);
    if (m.status == Status::kDead) dead.push_back(name);
  }
  // One live member (anti-entropy), one dead one (Serf's reconnect: a healed partition).
  for (const std::string &node : {pick(alive), pick(dead)})
    if (!node.empty()) send(node, state_frame(true, false));
  // One neighbour makes room for a random member (view_tick picks it): the views keep mixing,
  // so that two overlays that formed apart (a healed partition) join into one.
  const std::vector<std::string> neighbours = active_view();
  if (neighbours.size() >= active_target() && alive.size() > neighbours.size())
    drop_neighbour(pick(neighbours), true);
}

void Membership::on_state(const std::string &from, const wire::State &state, Time now) {
  const std::size_t refuted_before = refutations_;
  for (const wire::Update &u : state.members) apply(u, from, now, true);
  // A reply that made us refute: the sender still holds the stale view, so it gets ours.
  if (state.reply_wanted || refutations_ != refuted_before) send(from, state_frame(false, false));
}

// ---- active view (HyParView) ----

void Membership::view_tick(Time now) {
  if (now < next_view_) return;
  next_view_ = now + config_.gossip_interval;
  std::size_t pending = 0;
  for (auto it = active_.begin(); it != active_.end();) {
    if (!it->second.established && now - it->second.since > 2 * config_.probe_interval) {
      it = active_.erase(it);  // no reply: try someone else
      continue;
    }
    pending += !it->second.established;
    ++it;
  }
  const std::size_t target = active_target();
  if (active_.size() >= target || pending >= kMaxPendingNeighbours) return;
  std::vector<std::string> candidates;
  for (const auto &[name, m] : members_) {
    auto refused = refused_until_.find(name);
    if (m.status == Status::kAlive && !active_.count(name) &&
        (refused == refused_until_.end() || now >= refused->second))
      candidates.push_back(name);
  }
  std::shuffle(candidates.begin(), candidates.end(), random_);
  const bool alone = active_view().empty();
  for (const auto &node : candidates) {
    if (active_.size() >= target || pending >= kMaxPendingNeighbours) break;
    active_[node] = Edge{false, now};
    ++pending;
    send(node, wire::Neighbor{alone});
  }
}

void Membership::on_neighbor(const std::string &from, const wire::Neighbor &n, Time now) {
  const Member *m = member(from);
  bool accept = !leaving_ && m && m->status == Status::kAlive;
  if (accept && !active_.count(from) && active_.size() >= config_.max_active) {
    // Full: only a node with no neighbour at all gets in, in place of a random one.
    accept = n.high_priority;
    if (accept) {
      std::vector<std::string> others;
      for (const auto &[node, edge] : active_)
        if (edge.established) others.push_back(node);
      if (others.empty()) {
        accept = false;
      } else {
        drop_neighbour(pick(others), true);
      }
    }
  }
  if (accept) active_[from] = Edge{true, now};
  send(from, wire::NeighborReply{accept});
}

void Membership::on_neighbor_reply(const std::string &from, const wire::NeighborReply &r,
                                   Time now) {
  auto it = active_.find(from);
  if (it == active_.end()) {
    if (r.accepted) send(from, wire::Disconnect{});  // we gave up waiting meanwhile
    return;
  }
  if (r.accepted) {
    it->second.established = true;
    return;
  }
  active_.erase(it);
  refused_until_[from] = now + 4 * config_.probe_interval;
}

void Membership::drop_neighbour(const std::string &node, bool tell) {
  if (tell) send(node, wire::Disconnect{});
  active_.erase(node);
}

}  // namespace clusterd::partisan::swim
