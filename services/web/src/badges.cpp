#include "badges.hpp"

#include "flurry/core/crypto.hpp"
#include "flurry/core/text.hpp"
#include "flurry/state/ids.hpp"
#include "query.hpp"

namespace flurry::web {
namespace {

struct Look {
  std::string message, colour;
};

Look eval_look(state::EvalState s) {
  switch (s) {
    case state::EvalState::kSucceeded: return {"passing", "#2e7d32"};
    case state::EvalState::kFailed: return {"failing", "#c62828"};
    case state::EvalState::kCancelled: return {"cancelled", "#757575"};
    case state::EvalState::kEvaluating:
    case state::EvalState::kBuilding: return {"running", "#1565c0"};
  }
  return {"unknown", "#757575"};
}

Look job_look(msg::JobState s) {
  if (msg::is_success(s)) return {"passing", "#2e7d32"};
  if (s == msg::JobState::kQueued || s == msg::JobState::kBuilding) return {"running", "#1565c0"};
  if (s == msg::JobState::kCancelled) return {"cancelled", "#757575"};
  return {"failing", "#c62828"};
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

// Roughly Verdana 11px: what shields' badges are drawn with.
int text_width(const std::string& s) { return static_cast<int>(text::truncate_utf8(s, 60).size()) * 7 + 10; }

http::Response svg_answer(const http::Request& req, std::string svg) {
  http::Response r;
  const auto etag = "\"" + crypto::sha256_hex(svg).substr(0, 16) + "\"";
  r.content_type = "image/svg+xml";
  // Forges' image proxies cache what they may: a minute, then ask again.
  r.headers["Cache-Control"] = "max-age=60, must-revalidate";
  r.headers["ETag"] = etag;
  r.headers["X-Content-Type-Options"] = "nosniff";
  r.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'";
  if (req.header("if-none-match") == etag) {
    r.status = 304;
    return r;
  }
  r.body = std::move(svg);
  return r;
}

// "/badge/<forge>/<owner...>/<repo>.svg" -> the project key.
std::optional<state::ProjectKey> key_of(const std::string& path) {
  const std::string prefix = "/badge/", suffix = ".svg";
  if (!text::starts_with(path, prefix) || !text::ends_with(path, suffix)) return std::nullopt;
  const auto parts = text::split(path.substr(prefix.size(), path.size() - prefix.size() - suffix.size()), '/');
  if (parts.size() < 3) return std::nullopt;
  std::string owner;
  for (std::size_t i = 1; i + 1 < parts.size(); ++i) owner += (i > 1 ? "/" : "") + parts[i];
  for (const auto& p : parts) {
    if (p.empty()) return std::nullopt;
  }
  return state::ProjectKey{parts.front(), owner, parts.back()};
}

}  // namespace

std::string badge_svg(const std::string& label, const std::string& message, const std::string& colour) {
  const auto l = xml_escape(text::truncate_utf8(label, 60)), m = xml_escape(text::truncate_utf8(message, 60));
  const int lw = text_width(label), mw = text_width(message), w = lw + mw;
  const auto n = [](int v) { return std::to_string(v); };
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + n(w) + "\" height=\"20\" role=\"img\" aria-label=\"" + l + ": " + m +
         "\"><title>" + l + ": " + m + "</title><rect width=\"" + n(lw) + "\" height=\"20\" fill=\"#555\"/><rect x=\"" + n(lw) +
         "\" width=\"" + n(mw) + "\" height=\"20\" fill=\"" + colour +
         "\"/><g fill=\"#fff\" text-anchor=\"middle\" font-family=\"Verdana,DejaVu Sans,sans-serif\" font-size=\"11\"><text x=\"" +
         n(lw / 2) + "\" y=\"14\">" + l + "</text><text x=\"" + n(lw + mw / 2) + "\" y=\"14\">" + m + "</text></g></svg>";
}

std::optional<http::Response> handle_badge(const http::Request& req, ListingPorts ports, const ReadCheck& may_read) {
  if (req.method != "GET" || !text::starts_with(req.path, "/badge/")) return std::nullopt;
  auto key = key_of(req.path);
  auto q = parse_query(req.query);
  const auto not_found = svg_answer(req, badge_svg("flurry", "not found", "#757575"));
  auto missing = [&] {
    auto r = not_found;
    if (r.status == 200) r.status = 404;
    return r;
  };
  if (!key || !q) return missing();
  auto project = ports.catalog.project(*key);
  if (!project || !project->has_value()) return missing();
  auto readable = may_read({key->forge, key->owner, key->repo, "", (**project).html_url, (**project).default_branch});
  if (!readable || !*readable) return missing();
  const auto branch = q->count("branch") ? q->at("branch") : (**project).default_branch;
  auto ref = ports.catalog.ref(*key, "refs/heads/" + branch);
  if (!ref || !ref->has_value()) return missing();
  auto eval = ports.state.get_eval((**ref).latest_eval);
  if (!eval || !eval->has_value()) return missing();
  if (!q->count("attr")) {
    auto look = eval_look((**eval).state);
    return svg_answer(req, badge_svg("flurry", look.message, look.colour));
  }
  const auto& attr = q->at("attr");
  auto job = ports.state.get_job(state::job_id_for((**eval).id, attr));
  if (!job || !job->has_value()) return missing();
  const auto dot = attr.rfind('.');
  auto look = job_look((**job).state);
  return svg_answer(req, badge_svg(dot == std::string::npos ? attr : attr.substr(dot + 1), look.message, look.colour));
}

}  // namespace flurry::web
