// Redis adapter for the Catalog port. Keys (prefix P, ids hashed because
// names are attacker-controlled and unbounded; libs/state/README.md):
//   P:cat-projects              zset  project id -> last activity (ms)
//   P:cat-project:<pid>         hash  forge owner repo html_url default_branch last_activity_ms
//   P:cat-refs:<pid>            zset  ref -> last activity (ms)
//   P:cat-ref:<rid>             hash  ref kind name number title open last_activity_ms latest_eval latest_ms
//   P:cat-ref-evals:<rid>       zset  eval id -> created_ms
//   P:cat-project-evals:<pid>   zset  eval id -> created_ms
// with pid = sha256(forge \n owner \n repo), rid = sha256(pid \n ref).
// A filing is one script, so the indexes never disagree.
#include <charconv>

#include "flurry/core/crypto.hpp"
#include "flurry/state/redis_store.hpp"
#include "redis_client.hpp"

namespace flurry::state {
namespace {

using redis::Reply;

// KEYS: projects, project, refs, ref, ref evals, project evals.
// ARGV: pid, eval id, created_ms, forge, owner, repo, html_url,
// default_branch, ref, kind, name, number, title.
constexpr const char* kFileEvalBody = R"LUA(
local ms = tonumber(ARGV[3])
redis.call('HSET', KEYS[2], 'forge', ARGV[4], 'owner', ARGV[5], 'repo', ARGV[6])
if ms >= (tonumber(redis.call('HGET', KEYS[2], 'last_activity_ms')) or -1) then
  redis.call('HSET', KEYS[2], 'html_url', ARGV[7], 'default_branch', ARGV[8], 'last_activity_ms', ARGV[3])
  redis.call('ZADD', KEYS[1], ms, ARGV[1])
end
-- A newer eval (not this one filed again: a replay must not reopen a
-- closed pull request) becomes the ref's latest.
local r = redis.call('HMGET', KEYS[4], 'latest_ms', 'latest_eval')
local latest = tonumber(r[1]) or -1
if ms > latest or (ms == latest and r[2] ~= ARGV[2]) then
  redis.call('HSET', KEYS[4], 'ref', ARGV[9], 'kind', ARGV[10], 'name', ARGV[11], 'number', ARGV[12], 'title', ARGV[13],
             'open', 1, 'last_activity_ms', ARGV[3], 'latest_eval', ARGV[2], 'latest_ms', ARGV[3])
  redis.call('ZADD', KEYS[3], ms, ARGV[9])
end
redis.call('ZADD', KEYS[5], ms, ARGV[2])
redis.call('ZADD', KEYS[6], ms, ARGV[2])
return 1
)LUA";

// KEYS: ref. Closes it if it exists.
constexpr const char* kCloseRefBody = R"LUA(
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'open', 0) end
return 1
)LUA";

const std::string kFileEvalScript = kFileEvalBody;
const std::string kCloseRefScript = kCloseRefBody;
const redis::Script kFileEval{"catalog_file_eval", kFileEvalScript};
const redis::Script kCloseRef{"catalog_close_ref", kCloseRefScript};

std::int64_t to_i64(const std::string& s) {
  std::int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

Error bad_reply(std::string_view what) { return Error::transient("redis: unexpected reply to " + std::string(what)); }

CatalogProject to_project(const Reply& hash) {
  CatalogProject p;
  for (std::size_t i = 0; i + 1 < hash.elements.size(); i += 2) {
    const auto& f = hash.elements[i].str;
    const auto& v = hash.elements[i + 1].str;
    if (f == "forge") p.key.forge = v;
    else if (f == "owner") p.key.owner = v;
    else if (f == "repo") p.key.repo = v;
    else if (f == "html_url") p.html_url = v;
    else if (f == "default_branch") p.default_branch = v;
    else if (f == "last_activity_ms") p.last_activity_ms = to_i64(v);
  }
  return p;
}

CatalogRef to_ref(const Reply& hash) {
  CatalogRef r;
  for (std::size_t i = 0; i + 1 < hash.elements.size(); i += 2) {
    const auto& f = hash.elements[i].str;
    const auto& v = hash.elements[i + 1].str;
    if (f == "ref") r.ref = v;
    else if (f == "kind") r.kind = v;
    else if (f == "name") r.name = v;
    else if (f == "number") r.number = static_cast<int>(to_i64(v));
    else if (f == "title") r.title = v;
    else if (f == "open") r.open = v == "1";
    else if (f == "last_activity_ms") r.last_activity_ms = to_i64(v);
    else if (f == "latest_eval") r.latest_eval = v;
  }
  return r;
}

// (member, score) pairs of a WITHSCORES reply.
Result<std::vector<std::pair<std::string, std::int64_t>>> scored(const Reply& r, std::string_view what) {
  if (!r.is_array() || r.elements.size() % 2 != 0) return fail(bad_reply(what));
  std::vector<std::pair<std::string, std::int64_t>> out;
  for (std::size_t i = 0; i + 1 < r.elements.size(); i += 2) out.emplace_back(r.elements[i].str, to_i64(r.elements[i + 1].str));
  return out;
}

class RedisCatalog final : public Catalog {
 public:
  explicit RedisCatalog(const RedisOptions& o) : prefix_(o.prefix), client_(o) {}

  Result<void> ping() {
    auto r = client_.command({"PING"});
    if (!r) return fail(r.error());
    return {};
  }

  Result<void> file_eval(const EvalFiling& f) override {
    const auto pid = project_id({f.repo.forge, f.repo.owner, f.repo.name});
    const auto rid = ref_id(pid, f.ref);
    auto r = client_.eval(kFileEval,
                          {key("cat-projects"), key("cat-project:" + pid), key("cat-refs:" + pid), key("cat-ref:" + rid),
                           key("cat-ref-evals:" + rid), key("cat-project-evals:" + pid)},
                          {pid, f.eval_id, std::to_string(f.created_ms), f.repo.forge, f.repo.owner, f.repo.name, f.repo.html_url,
                           f.repo.default_branch, f.ref, f.kind, f.name, std::to_string(f.number), f.title});
    if (!r) return fail(r.error());
    return {};
  }

  Result<void> close_ref(const ProjectKey& project, const std::string& ref) override {
    auto r = client_.eval(kCloseRef, {key("cat-ref:" + ref_id(project_id(project), ref))}, {});
    if (!r) return fail(r.error());
    return {};
  }

  Result<std::vector<CatalogProject>> projects(std::size_t limit) override {
    if (limit == 0) return std::vector<CatalogProject>();
    auto ids = client_.command({"ZREVRANGE", key("cat-projects"), "0", std::to_string(limit - 1)});
    if (!ids) return fail(ids.error());
    if (!ids->is_array()) return fail(bad_reply("ZREVRANGE cat-projects"));
    std::vector<std::vector<std::string>> reads;
    for (const auto& id : ids->elements) reads.push_back({"HGETALL", key("cat-project:" + id.str)});
    std::vector<CatalogProject> out;
    if (reads.empty()) return out;
    auto hashes = client_.pipeline(reads);
    if (!hashes) return fail(hashes.error());
    for (const auto& h : *hashes) {
      if (h.is_array() && !h.elements.empty()) out.push_back(to_project(h));
    }
    return out;
  }

  Result<std::optional<CatalogProject>> project(const ProjectKey& project) override {
    auto h = client_.command({"HGETALL", key("cat-project:" + project_id(project))});
    if (!h) return fail(h.error());
    if (!h->is_array()) return fail(bad_reply("HGETALL cat-project"));
    if (h->elements.empty()) return std::optional<CatalogProject>();
    return std::optional<CatalogProject>(to_project(*h));
  }

  Result<std::vector<CatalogRef>> refs(const ProjectKey& project, std::size_t limit) override {
    const auto pid = project_id(project);
    std::vector<CatalogRef> out;
    if (limit == 0) return out;
    auto names = client_.command({"ZREVRANGE", key("cat-refs:" + pid), "0", std::to_string(limit - 1)});
    if (!names) return fail(names.error());
    if (!names->is_array()) return fail(bad_reply("ZREVRANGE cat-refs"));
    std::vector<std::vector<std::string>> reads;
    for (const auto& ref : names->elements) reads.push_back({"HGETALL", key("cat-ref:" + ref_id(pid, ref.str))});
    if (reads.empty()) return out;
    auto hashes = client_.pipeline(reads);
    if (!hashes) return fail(hashes.error());
    for (const auto& h : *hashes) {
      if (h.is_array() && !h.elements.empty()) out.push_back(to_ref(h));
    }
    return out;
  }

  Result<std::optional<CatalogRef>> ref(const ProjectKey& project, const std::string& ref) override {
    auto h = client_.command({"HGETALL", key("cat-ref:" + ref_id(project_id(project), ref))});
    if (!h) return fail(h.error());
    if (!h->is_array()) return fail(bad_reply("HGETALL cat-ref"));
    if (h->elements.empty()) return std::optional<CatalogRef>();
    return std::optional<CatalogRef>(to_ref(*h));
  }

  Result<EvalPage> evals(const ProjectKey& project, const std::string& ref, const std::string& cursor, std::size_t limit) override {
    const auto pid = project_id(project);
    const auto index = ref.empty() ? key("cat-project-evals:" + pid) : key("cat-ref-evals:" + ref_id(pid, ref));
    std::optional<EvalPosition> from;
    if (!cursor.empty() && !(from = decode_cursor(cursor))) return fail(Error::rejected("not a cursor: " + cursor.substr(0, 40)));
    limit = std::max<std::size_t>(1, limit);
    // Evals created in the cursor's very millisecond come first (ordered by
    // id), then the strictly older ones: a page never repeats or skips one.
    std::vector<std::pair<std::string, std::int64_t>> candidates;
    if (from) {
      const auto ms = std::to_string(from->created_ms);
      auto same = client_.command({"ZREVRANGEBYSCORE", index, ms, ms, "WITHSCORES"});
      if (!same) return fail(same.error());
      auto tied = scored(*same, "ZREVRANGEBYSCORE");
      if (!tied) return fail(tied.error());
      for (auto& e : *tied) {
        if (from->before(e.second, e.first)) candidates.push_back(std::move(e));
      }
    }
    const auto max = from ? "(" + std::to_string(from->created_ms) : std::string("+inf");
    auto older = client_.command({"ZREVRANGEBYSCORE", index, max, "-inf", "WITHSCORES", "LIMIT", "0", std::to_string(limit + 1)});
    if (!older) return fail(older.error());
    auto rest = scored(*older, "ZREVRANGEBYSCORE");
    if (!rest) return fail(rest.error());
    candidates.insert(candidates.end(), rest->begin(), rest->end());
    EvalPage page;
    for (std::size_t i = 0; i < candidates.size() && i < limit; ++i) page.eval_ids.push_back(candidates[i].first);
    if (candidates.size() > limit) page.next_cursor = encode_cursor({candidates[limit - 1].second, candidates[limit - 1].first});
    return page;
  }

 private:
  std::string key(const std::string& rest) const { return prefix_ + ":" + rest; }
  static std::string project_id(const ProjectKey& p) { return crypto::sha256_hex(p.forge + "\n" + p.owner + "\n" + p.repo); }
  static std::string ref_id(const std::string& pid, const std::string& ref) { return crypto::sha256_hex(pid + "\n" + ref); }

  std::string prefix_;
  redis::Client client_;
};

}  // namespace

Result<std::unique_ptr<Catalog>> connect_redis_catalog(const RedisOptions& options) {
  auto catalog = std::make_unique<RedisCatalog>(options);
  auto ok = catalog->ping();
  if (!ok) return fail(ok.error());
  return std::unique_ptr<Catalog>(std::move(catalog));
}

}  // namespace flurry::state
