#pragma once
// Bus message types. Each has a JSON codec with strict checking (wrong
// version or missing field -> poison error) and a JSON Schema in schemas/.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "flurry/core/error.hpp"
#include "flurry/messages/job_state.hpp"

namespace flurry::msg {

inline constexpr int kVersion = 1;

// Where a change happened, forge-neutral.
struct Repo {
  std::string forge;           // "github", "gitea", "gitlab", "git"
  std::string owner;
  std::string name;
  std::string clone_url;
  std::string html_url;
  std::string default_branch;
  // GitHub: the App installation the webhook named (a webhook delivered to
  // an App carries it), so that tokens need no look-up; 0 = not known.
  std::int64_t installation_id = 0;
  bool operator==(const Repo&) const = default;
  std::string full_name() const { return owner + "/" + name; }
};

// A pull request (GitHub, Gitea/Forgejo) or merge request (GitLab), as
// its event described it.
struct PullRequest {
  int number = 0;            // 0: the change is no pull request
  std::string base_branch;   // the branch it wants to merge into
  std::string base_rev;      // that branch's head when the event was sent (may be empty)
  std::string head_branch;   // the branch it comes from (in head_clone_url)
  std::string head_clone_url;  // the repository holding the head (a fork's)
  bool from_fork = false;      // head and base repositories differ
  std::string author;
  // What the forge says of the author's standing in the base repository
  // (GitHub author_association: OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR,
  // FIRST_TIME_CONTRIBUTOR, NONE...); empty when the forge does not say.
  std::string author_association;
  std::string title;
  std::vector<std::string> labels;
  bool operator==(const PullRequest&) const = default;
};

// A forge's "re-run" of earlier work (GitHub's Re-run buttons).
struct Rerun {
  std::string job_id;   // one job's check run: that job (and what it waited for)
  std::string eval_id;  // the eval's check run: every failure of that eval
  // Neither: the eval of `ref` at `rev` (a whole check suite).
  bool operator==(const Rerun&) const = default;
};

// Someone's approval of a pull request from a fork (a comment with the
// approve command, or the API): the pull request may be evaluated.
struct Approval {
  std::string by;           // who approved
  std::string association;  // GitHub's author_association of the comment; empty elsewhere
  bool operator==(const Approval&) const = default;
};

// schemas/change_event.schema.json; subject flurry.change.<forge>
struct ChangeEvent {
  std::string id;    // globally unique: "<forge>:<delivery id>"
  // "push": a branch or tag moved to `rev`.
  // "pull_request": a pull request's head is `rev`; it is evaluated merged
  //   onto its base branch, statuses go to `rev`.
  // "pull_request_closed": the pull request was closed or merged: its work
  //   is cancelled.
  // "rerun": build again what an earlier eval of `rev` failed (`rerun`
  //   says which): its failed-build cache entries are cleared and the
  //   change that made it is evaluated anew.
  // "approve": `approval` approves pull request `pull_request.number`;
  //   `rev` may be empty (a comment does not name the head).
  std::string kind;
  Repo repo;
  // Branches and tags: "refs/heads/main", "refs/tags/v1". Pull requests:
  // the forge's ref of the head, "refs/pull/<n>/head" (GitHub, Gitea) or
  // "refs/merge-requests/<n>/head" (GitLab).
  std::string ref;
  std::string branch;  // set for branch pushes
  std::string tag;     // set for tag pushes
  std::string rev;     // 40 hex
  std::string before;  // previous rev, may be empty
  std::string sender;
  std::int64_t received_at_ms = 0;
  PullRequest pull_request;  // set for the pull_request kinds
  Rerun rerun;               // for kind rerun; and on the change a re-run evaluates again
  Approval approval;         // for kind approve
  bool operator==(const ChangeEvent&) const = default;
  bool is_pull_request() const { return pull_request.number > 0; }
};

inline constexpr std::string_view kPush = "push";
inline constexpr std::string_view kPullRequest = "pull_request";
inline constexpr std::string_view kPullRequestClosed = "pull_request_closed";
inline constexpr std::string_view kRerun = "rerun";
inline constexpr std::string_view kApprove = "approve";
// A comment line that approves a pull request (kind approve).
inline constexpr std::string_view kApproveCommand = "/flurry approve";
// True if some line of `comment` is the approve command (case and
// surrounding blanks aside).
bool is_approve_command(std::string_view comment);

// schemas/build_request.schema.json; subject flurry.build.<system>
struct BuildRequest {
  std::string eval_id;
  std::string job_id;
  std::string attr;
  std::string drv_path;
  std::string system;
  std::string store_url;  // store holding the derivation closure ("" = local)
  // The eval's repository and commit, for the job's status when its build
  // starts; empty in requests made before they were carried (the builder
  // reads the eval then).
  Repo repo;
  std::string rev;
  bool operator==(const BuildRequest&) const = default;
};

// schemas/job_finished.schema.json; subject flurry.job.finished
struct JobFinished {
  std::string eval_id;
  std::string job_id;
  std::string attr;
  std::string drv_path;
  std::string system;
  JobState state = JobState::kQueued;
  std::map<std::string, std::string> outputs;  // output name -> store path
  std::string store_url;                       // store holding the outputs ("" = local)
  bool operator==(const JobFinished&) const = default;
};

// schemas/eval_finished.schema.json; subject flurry.eval.finished
struct EvalFinished {
  std::string eval_id;
  std::string state;  // "succeeded" | "failed"
  Repo repo;
  std::string ref;
  std::string branch;
  std::string tag;
  std::string rev;
  int jobs_total = 0;
  int jobs_failed = 0;
  bool operator==(const EvalFinished&) const = default;
};

// schemas/status_event.schema.json; subject flurry.status.<forge>
struct StatusEvent {
  std::string eval_id;
  Repo repo;
  std::string rev;
  std::string context;  // "flurry/eval", "flurry/effects", "flurry/checks.x86_64-linux.ok"
  StatusState state = StatusState::kPending;
  std::string description;
  std::string target_url;
  std::int64_t at_us = 0;  // when the state was decided; later wins per context
  // For a job's context: the job and its state (a check run shows more than
  // the four status states: timed out, cancelled, skipped). Empty for the
  // eval's and effects' contexts.
  std::string job_id;
  std::string job_state;
  // More than the description can hold, for forges that show it (a check
  // run's text): nix's whole evaluation error, trace included. At most
  // kMaxStatusDetails bytes; empty for most statuses.
  std::string details;
  bool operator==(const StatusEvent&) const = default;
};

inline constexpr std::size_t kMaxStatusDetails = 65536;

// schemas/dead_letter.schema.json; subject flurry.dead.<consumer>
struct DeadLetter {
  std::string consumer;
  std::string subject;
  std::string reason;
  std::uint64_t deliveries = 0;
  std::string data;  // the original payload, verbatim
  bool operator==(const DeadLetter&) const = default;
};

std::string encode(const ChangeEvent&);
std::string encode(const BuildRequest&);
std::string encode(const JobFinished&);
std::string encode(const EvalFinished&);
std::string encode(const StatusEvent&);
std::string encode(const DeadLetter&);

Result<ChangeEvent> decode_change_event(std::string_view json);
Result<BuildRequest> decode_build_request(std::string_view json);
Result<JobFinished> decode_job_finished(std::string_view json);
Result<EvalFinished> decode_eval_finished(std::string_view json);
Result<StatusEvent> decode_status_event(std::string_view json);
Result<DeadLetter> decode_dead_letter(std::string_view json);

}  // namespace flurry::msg
