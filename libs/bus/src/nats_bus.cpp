// JetStream adapter for the Bus port. All libnats calls live here.
#include "flurry/bus/nats_bus.hpp"

#include <nats/nats.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "flurry/core/log.hpp"
#include "flurry/core/text.hpp"
#include "flurry/messages/messages.hpp"
#include "flurry/messages/subjects.hpp"

namespace flurry::bus {
namespace {

constexpr std::int64_t kNanosPerMilli = 1'000'000;
constexpr std::int64_t kNanosPerSecond = 1'000'000'000;

std::string nats_error(natsStatus s, jsErrCode jerr = static_cast<jsErrCode>(0)) {
  std::string out = natsStatus_GetText(s);
  const char* last = nats_GetLastError(nullptr);
  if (last && *last) out += std::string(": ") + last;
  if (jerr != 0) out += " (jetstream error " + std::to_string(static_cast<int>(jerr)) + ")";
  return out;
}

struct StreamSpec {
  std::string name;
  std::vector<std::string> subjects;
  jsRetentionPolicy retention;
  std::int64_t max_age_ns;
};

std::vector<StreamSpec> flurry_streams() {
  const std::int64_t day = 24LL * 3600 * kNanosPerSecond;
  return {
      {std::string(subjects::kChangesStream), {"flurry.change.>"}, js_WorkQueuePolicy, 0},
      {std::string(subjects::kBuildsStream), {"flurry.build.>"}, js_WorkQueuePolicy, 0},
      {std::string(subjects::kEventsStream), {"flurry.job.>", "flurry.eval.>", "flurry.status.>", "flurry.effect.>"},
       js_LimitsPolicy, 7 * day},
      {std::string(subjects::kDeadStream), {"flurry.dead.>"}, js_LimitsPolicy, 30 * day},
  };
}

// Sends in-progress acks for the message a handler works on, every `beat`,
// from one thread per handler that lives as long as the handler does.
class Heart {
 public:
  Heart() : thread_([this] { run(); }) {}
  ~Heart() {
    {
      std::lock_guard lock(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void start(natsMsg* m, std::chrono::milliseconds beat) {
    std::lock_guard lock(mu_);
    msg_ = m;
    beat_ = beat;
    ++generation_;
    cv_.notify_all();
  }
  // No in-progress ack for the message after this returns.
  void stop() {
    std::lock_guard lock(mu_);
    msg_ = nullptr;
    ++generation_;
    cv_.notify_all();
  }
  void beat_now() {
    std::lock_guard lock(mu_);
    if (msg_) natsMsg_InProgress(msg_, nullptr);
  }

 private:
  void run() {
    std::unique_lock lock(mu_);
    while (!quit_) {
      if (!msg_) {
        cv_.wait(lock, [&] { return quit_ || msg_ != nullptr; });
        continue;
      }
      const auto gen = generation_;
      if (!cv_.wait_for(lock, beat_, [&] { return quit_ || generation_ != gen; })) natsMsg_InProgress(msg_, nullptr);
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  natsMsg* msg_ = nullptr;
  std::chrono::milliseconds beat_{1000};
  std::uint64_t generation_ = 0;
  bool quit_ = false;
  std::thread thread_;  // last: starts once the rest exists
};

// What the connection callbacks see. Never freed: libnats may call them
// from its own threads while the connection closes, even as the process
// exits.
struct Watch {
  std::string url;
  std::atomic<bool> closing{false};
};

class NatsBus final : public Bus {
 public:
  NatsBus(natsConnection* nc, jsCtx* js, NatsOptions o, Watch* watch) : nc_(nc), js_(js), options_(std::move(o)), watch_(watch) {}
  ~NatsBus() override {
    watch_->closing = true;  // closing on purpose: no "lost connection" line
    jsCtx_Destroy(js_);
    natsConnection_Destroy(nc_);
  }

  Result<void> ensure_streams() {
    for (const auto& s : flurry_streams()) {
      jsStreamConfig cfg;
      jsStreamConfig_Init(&cfg);
      std::vector<const char*> subs;
      for (const auto& subj : s.subjects) subs.push_back(subj.c_str());
      cfg.Name = s.name.c_str();
      cfg.Subjects = subs.data();
      cfg.SubjectsLen = static_cast<int>(subs.size());
      cfg.Retention = s.retention;
      cfg.Storage = js_FileStorage;
      cfg.MaxAge = s.max_age_ns;
      cfg.Replicas = options_.stream_replicas;
      cfg.Duplicates = 10LL * 60 * kNanosPerSecond;
      jsStreamInfo* si = nullptr;
      jsErrCode jerr = static_cast<jsErrCode>(0);
      natsStatus st = js_AddStream(&si, js_, &cfg, nullptr, &jerr);
      if (st != NATS_OK && jerr == JSStreamNameExistErr) {
        st = js_UpdateStream(&si, js_, &cfg, nullptr, &jerr);
      }
      jsStreamInfo_Destroy(si);
      if (st != NATS_OK) return fail(Error::transient("nats: cannot create stream " + s.name + ": " + nats_error(st, jerr)));
    }
    return {};
  }

  // A message with an id is sent again until publish_timeout when its ack
  // does not come within a second, or JetStream is not there yet: the ack
  // of a publish in flight when the server died never comes, and the
  // stream's duplicate window makes sending it again harmless. Without an
  // id, one attempt (a second could store it twice).
  Result<void> publish(const OutMessage& msg) override {
    using Clock = std::chrono::steady_clock;
    constexpr std::chrono::milliseconds kAttempt{1000};
    const auto deadline = Clock::now() + options_.publish_timeout;
    const bool resend = !msg.msg_id.empty();
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      jsPubOptions po;
      jsPubOptions_Init(&po);
      po.MaxWait = std::max<std::int64_t>(1, (resend ? std::min(left, kAttempt) : left).count());
      if (resend) po.MsgId = msg.msg_id.c_str();
      jsPubAck* pa = nullptr;
      jsErrCode jerr = static_cast<jsErrCode>(0);
      natsStatus st = js_Publish(&pa, js_, msg.subject.c_str(), msg.data.data(), static_cast<int>(msg.data.size()), &po, &jerr);
      jsPubAck_Destroy(pa);
      if (st == NATS_OK) return {};
      // An answer from JetStream (jerr) is final; so is a closed connection.
      // A timeout, no JetStream yet, or the socket breaking as the server
      // dies (the client reconnects by itself) are worth another send.
      const bool lost = st == NATS_TIMEOUT || st == NATS_NO_RESPONDERS || st == NATS_IO_ERROR ||
                        st == NATS_CONNECTION_DISCONNECTED || st == NATS_STALE_CONNECTION;
      const bool again = resend && jerr == 0 && lost && Clock::now() < deadline;
      if (!again) return fail(Error::transient("nats: publish to " + msg.subject + " failed: " + nats_error(st, jerr)));
      if (st != NATS_TIMEOUT) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  bool healthy() override { return natsConnection_Status(nc_) == NATS_CONN_STATUS_CONNECTED; }

  Result<QueueDepth> queue_depth(const ConsumerSpec& spec) override {
    if (auto r = ensure_consumer(spec); !r) return fail(r.error());
    jsConsumerInfo* ci = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus st = js_GetConsumerInfo(&ci, js_, spec.stream.c_str(), spec.durable.c_str(), nullptr, &jerr);
    if (st != NATS_OK || !ci) {
      jsConsumerInfo_Destroy(ci);
      return fail(Error::transient("nats: cannot read consumer " + spec.durable + ": " + nats_error(st, jerr)));
    }
    QueueDepth d{ci->NumPending, static_cast<std::uint64_t>(std::max<std::int64_t>(0, ci->NumAckPending))};
    jsConsumerInfo_Destroy(ci);
    return d;
  }

  Result<void> consume(const ConsumerSpec& spec, Handler handler, const std::atomic<bool>& stop) override {
    return consume_pool([spec] { return std::vector<ConsumerSpec>{spec}; }, spec.concurrency, std::move(handler), stop);
  }

  Result<void> consume_pool(ConsumerSource source, int concurrency, Handler handler, const std::atomic<bool>& stop) override {
    for (const auto& spec : source()) {
      if (auto r = ensure_consumer(spec); !r) return r;
    }
    std::vector<std::thread> workers;
    for (int i = 0; i < std::max(1, concurrency); ++i) {
      workers.emplace_back([this, i, &source, &handler, &stop] { worker(source, handler, stop, static_cast<std::size_t>(i)); });
    }
    for (auto& w : workers) w.join();
    return {};
  }

  Result<std::vector<std::string>> stored_subjects(const std::string& stream, const std::string& filter) override {
    jsOptions o;
    jsOptions_Init(&o);
    o.Stream.Info.SubjectsFilter = filter.c_str();
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus st = js_GetStreamInfo(&si, js_, stream.c_str(), &o, &jerr);
    if (st != NATS_OK || !si) {
      jsStreamInfo_Destroy(si);
      return fail(Error::transient("nats: cannot read stream " + stream + ": " + nats_error(st, jerr)));
    }
    std::vector<std::string> out;
    if (const auto* list = si->State.Subjects) {
      for (int i = 0; i < list->Count; ++i) {
        if (list->List[i].Msgs > 0) out.emplace_back(list->List[i].Subject);
      }
    }
    jsStreamInfo_Destroy(si);
    return out;
  }

 private:
  Result<void> ensure_consumer(const ConsumerSpec& spec) {
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = spec.durable.c_str();
    cc.FilterSubject = spec.filter_subject.c_str();
    cc.AckPolicy = js_AckExplicit;
    cc.DeliverPolicy = js_DeliverAll;
    cc.AckWait = static_cast<std::int64_t>(spec.ack_wait.count()) * kNanosPerMilli;
    cc.MaxDeliver = -1;  // the adapter dead-letters after spec.max_deliver itself
    cc.MaxAckPending = std::max(16, spec.concurrency * 4);
    jsConsumerInfo* ci = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus st = js_AddConsumer(&ci, js_, spec.stream.c_str(), &cc, nullptr, &jerr);
    jsConsumerInfo_Destroy(ci);
    if (st == NATS_OK || jerr == JSConsumerNameExistErr || jerr == JSConsumerExistingActiveErr) return {};
    // Another instance may have created it a moment ago with the same config.
    ci = nullptr;
    jsErrCode jerr2 = static_cast<jsErrCode>(0);
    natsStatus st2 = js_GetConsumerInfo(&ci, js_, spec.stream.c_str(), spec.durable.c_str(), nullptr, &jerr2);
    jsConsumerInfo_Destroy(ci);
    if (st2 == NATS_OK) return {};
    return fail(Error::transient("nats: cannot create consumer " + spec.durable + ": " + nats_error(st, jerr)));
  }

  natsSubscription* subscribe(const ConsumerSpec& spec) {
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = spec.stream.c_str();
    so.Consumer = spec.durable.c_str();  // bind: never create or delete the durable
    natsSubscription* sub = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus st = js_PullSubscribe(&sub, js_, spec.filter_subject.c_str(), spec.durable.c_str(), nullptr, &so, &jerr);
    if (st != NATS_OK) {
      log::warn("bus.subscribe_failed", "cannot bind to consumer", {{"consumer", spec.durable}, {"error", nats_error(st, jerr)}});
      natsSubscription_Destroy(sub);
      return nullptr;
    }
    return sub;
  }

  // One handler of a pool: takes the next message from any listed
  // consumer, in turn, and handles it. With one consumer it waits on it;
  // with several it first looks (without waiting) at each, starting after
  // the one it served last, then waits a short while on one of them.
  void worker(const ConsumerSource& source, const Handler& handler, const std::atomic<bool>& stop, std::size_t turn) {
    struct Sub {
      natsSubscription* sub = nullptr;
      bool warned = false;
    };
    std::map<std::string, Sub> subs;  // by durable
    Heart heart;                      // one per handler, not one per message
    auto drop = [](Sub& s) {
      natsSubscription_Destroy(s.sub);  // Destroy (not Unsubscribe) keeps the durable
      s.sub = nullptr;
    };
    // Fills `list` with a message from `spec`; false when there is none
    // (nothing there, or the fetch failed).
    auto fetch = [&](const ConsumerSpec& spec, std::chrono::milliseconds wait, bool no_wait, natsMsgList& list) -> bool {
      auto& s = subs[spec.durable];
      if (!s.sub && (!healthy() || !ensure_consumer(spec) || !(s.sub = subscribe(spec)))) return false;
      jsFetchRequest req;
      jsFetchRequest_Init(&req);
      req.Batch = 1;
      req.NoWait = no_wait;
      req.Expires = static_cast<std::int64_t>(wait.count()) * kNanosPerMilli;
      natsStatus st = natsSubscription_FetchRequest(&list, s.sub, &req);
      // Nothing there: a waiting fetch times out, a no-wait one is answered "not found".
      if (st == NATS_TIMEOUT || (no_wait && st == NATS_NOT_FOUND)) return false;
      if (st != NATS_OK) {
        if (!s.warned) {
          log::warn("bus.fetch_failed", "fetch failed; retrying", {{"consumer", spec.durable}, {"error", nats_error(st)}});
          s.warned = true;
        }
        natsMsgList_Destroy(&list);
        if (st == NATS_INVALID_SUBSCRIPTION || st == NATS_CONNECTION_CLOSED || st == NATS_NOT_FOUND) drop(s);
        sleep_unless_stopped(stop, std::chrono::seconds(1));
        return false;
      }
      s.warned = false;
      if (list.Count > 0) return true;
      natsMsgList_Destroy(&list);
      return false;
    };
    while (!stop.load()) {
      const auto specs = source();
      for (auto it = subs.begin(); it != subs.end();) {
        bool listed = std::any_of(specs.begin(), specs.end(), [&](const ConsumerSpec& c) { return c.durable == it->first; });
        if (listed) {
          ++it;
          continue;
        }
        if (it->second.sub) drop(it->second);
        it = subs.erase(it);
      }
      if (specs.empty()) {
        sleep_unless_stopped(stop, std::chrono::seconds(1));
        continue;
      }
      const std::size_t n = specs.size();
      natsMsgList list{};
      bool got = false;
      std::size_t from = turn % n;
      if (n > 1) {
        for (std::size_t k = 0; k < n && !got; ++k) {
          from = (turn + k) % n;
          got = fetch(specs[from], std::chrono::milliseconds(200), /*no_wait=*/true, list);
        }
        if (!got) from = turn % n;
      }
      const auto wait = n > 1 ? std::chrono::milliseconds(std::max<long>(100, 1000 / static_cast<long>(n))) : std::chrono::milliseconds(1000);
      if (!got) got = fetch(specs[from], wait, /*no_wait=*/false, list);
      turn = from + 1;
      if (!got) continue;
      for (int i = 0; i < list.Count; ++i) handle_one(specs[from], handler, list.Msgs[i], heart);
      natsMsgList_Destroy(&list);
    }
    for (auto& [_, s] : subs) {
      if (s.sub) drop(s);
    }
  }

  void handle_one(const ConsumerSpec& spec, const Handler& handler, natsMsg* m, Heart& heart) {
    Delivery d;
    d.consumer = spec.durable;
    d.subject = natsMsg_GetSubject(m);
    d.data.assign(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m)));
    jsMsgMetaData* meta = nullptr;
    if (natsMsg_GetMetaData(&meta, m) == NATS_OK && meta) {
      d.num_delivered = meta->NumDelivered;
      d.stream_seq = meta->Sequence.Stream;
    }
    jsMsgMetaData_Destroy(meta);

    // Heartbeat: tell the server we are alive while the handler works.
    heart.start(m, std::max<std::chrono::milliseconds>(spec.ack_wait / 3, std::chrono::milliseconds(100)));
    d.in_progress = [&heart] { heart.beat_now(); };

    Disposition disp;
    try {
      disp = handler(d);
    } catch (const std::exception& e) {
      log::error("bus.handler_threw", "handler threw; will redeliver", {{"consumer", spec.durable}, {"error", e.what()}});
      disp = Disposition::nak(std::string("handler threw: ") + e.what());
    } catch (...) {
      disp = Disposition::nak("handler threw");
    }
    heart.stop();

    if (disp.kind == Disposition::Kind::kNak && d.num_delivered >= static_cast<std::uint64_t>(spec.max_deliver)) {
      disp = Disposition::dead_letter("gave up after " + std::to_string(d.num_delivered) + " deliveries: " + disp.reason);
    }
    switch (disp.kind) {
      case Disposition::Kind::kAck: {
        // Not waited for: the work is done and idempotent, so an ack that is
        // lost only costs a redelivery that changes nothing.
        natsStatus st = natsMsg_Ack(m, nullptr);
        if (st != NATS_OK) {
          log::warn("bus.ack_failed", "ack failed; message may be redelivered", {{"consumer", spec.durable}, {"error", nats_error(st)}});
        }
        break;
      }
      case Disposition::Kind::kNak:
        natsMsg_NakWithDelay(m, static_cast<std::int64_t>(disp.delay.count()), nullptr);  // milliseconds
        break;
      case Disposition::Kind::kDeadLetter: {
        msg::DeadLetter dl{spec.durable, d.subject, disp.reason, d.num_delivered, d.data};
        auto r = publish({subjects::dead(spec.durable), msg::encode(dl), ""});
        if (!r) {
          log::error("bus.dead_letter_failed", "cannot dead-letter; will redeliver", {{"consumer", spec.durable}, {"error", r.error().message}});
          natsMsg_NakWithDelay(m, 5000, nullptr);
          break;
        }
        log::warn("bus.dead_lettered", "message dead-lettered",
                  {{"consumer", spec.durable}, {"subject", d.subject}, {"reason", disp.reason},
                   {"deliveries", d.num_delivered}});
        natsMsg_Term(m, nullptr);
        if (options_.on_dead_letter) options_.on_dead_letter(spec.durable);
        break;
      }
    }
  }

  static void sleep_unless_stopped(const std::atomic<bool>& stop, std::chrono::milliseconds d) {
    auto until = std::chrono::steady_clock::now() + d;
    while (!stop.load() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  natsConnection* nc_;
  jsCtx* js_;
  NatsOptions options_;
  Watch* watch_;
};

void on_disconnected(natsConnection*, void* closure) {
  const auto* w = static_cast<const Watch*>(closure);
  if (!w->closing) log::warn("bus.disconnected", "lost connection to NATS; reconnecting", {{"url", w->url}});
}
void on_reconnected(natsConnection*, void* closure) {
  const auto* w = static_cast<const Watch*>(closure);
  if (!w->closing) log::info("bus.reconnected", "reconnected to NATS", {{"url", w->url}});
}

}  // namespace

Result<std::unique_ptr<Bus>> connect_nats(const NatsOptions& options) {
  const std::string shown = text::display_url(options.url);  // credentials hidden
  natsOptions* opts = nullptr;
  if (natsOptions_Create(&opts) != NATS_OK) return fail(Error::transient("nats: cannot create options"));
  auto* watch = new Watch{shown};  // never freed once a connection exists (see Watch)
  natsOptions_SetURL(opts, options.url.c_str());
  natsOptions_SetName(opts, options.name.c_str());
  natsOptions_SetSendAsap(opts, true);
  natsOptions_SetMaxReconnect(opts, -1);
  natsOptions_SetReconnectWait(opts, 250);
  natsOptions_SetTimeout(opts, 5000);
  natsOptions_SetDisconnectedCB(opts, on_disconnected, watch);
  natsOptions_SetReconnectedCB(opts, on_reconnected, watch);
  natsConnection* nc = nullptr;
  natsStatus st = natsConnection_Connect(&nc, opts);
  natsOptions_Destroy(opts);
  if (st != NATS_OK) {
    delete watch;  // no connection, no callbacks
    return fail(Error::transient("nats: cannot connect to " + shown + ": " + nats_error(st)));
  }
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = options.publish_timeout.count();
  jsCtx* js = nullptr;
  st = natsConnection_JetStream(&js, nc, &jo);
  if (st != NATS_OK) {
    natsConnection_Destroy(nc);
    return fail(Error::transient("nats: no JetStream context: " + nats_error(st)));
  }
  auto bus = std::make_unique<NatsBus>(nc, js, options, watch);
  if (auto r = bus->ensure_streams(); !r) return fail(r.error());
  log::info("bus.connected", "connected to NATS", {{"url", shown}});
  return std::unique_ptr<Bus>(std::move(bus));
}

}  // namespace flurry::bus
