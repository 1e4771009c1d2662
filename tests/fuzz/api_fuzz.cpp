// The web API's request decoders on arbitrary bodies, and its answers on
// arbitrary strings. What a decoder accepts keeps the promises the
// handlers rely on; every answer is valid JSON, whatever bytes it carries.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "api_codec.hpp"
#include "finding.hpp"
#include "flurry/core/text.hpp"

namespace {

using namespace flurry;

void check_json(const std::string& answer, const char* what) {
  if (!nlohmann::json::accept(answer)) fuzz::finding(std::string(what) + " is not valid JSON", answer);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);

  if (auto r = web::decode_rebuild(body)) {
    if (r->drv_paths.size() > web::kMaxRebuild) fuzz::finding("decode_rebuild accepted too many derivations");
    for (const auto& d : r->drv_paths) {
      if (!text::starts_with(d, "/nix/store/") || !text::ends_with(d, ".drv") || d.find("/..") != std::string::npos) {
        fuzz::finding("decode_rebuild accepted a path that is not a .drv store path", d);
      }
    }
  }
  if (auto c = web::decode_cancel(body)) {
    if (c->reason.empty() || c->reason.size() > 200 || !text::valid_utf8(c->reason)) fuzz::finding("decode_cancel's reason is empty, long or not UTF-8", c->reason);
  }
  if (auto a = web::decode_approve(body)) {
    if (a->forge != "github" && a->forge != "gitea" && a->forge != "gitlab") fuzz::finding("decode_approve accepted forge", a->forge);
    if (a->owner.empty() || a->repo.empty() || a->number <= 0 || a->by.empty()) fuzz::finding("decode_approve accepted an incomplete approval", body);
  }

  check_json(web::encode_error(body), "encode_error");
  check_json(web::encode_approved(body), "encode_approved");
  check_json(web::encode_rebuilt({body}, {body, body}), "encode_rebuilt");
  check_json(web::encode_cancelled(body, 3, state::EvalState::kCancelled), "encode_cancelled");
  state::JobRecord job;
  job.id = job.attr = job.name = job.error = body;
  job.outputs[body] = body;
  check_json(web::encode_job(job), "encode_job");
  return 0;
}
