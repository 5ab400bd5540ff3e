// json_api: a small REST resource on herd's worker API. Todos kept in memory:
//
//   GET    /todos              list (?done=true|false filters)
//   POST   /todos              create from {"title": "...", "done": false} -> 201
//   GET    /todos/:id          one todo, or 404
//   PUT    /todos/:id          replace (title required)
//   PATCH  /todos/:id          update the fields given
//   DELETE /todos/:id          remove -> 204
//   GET    /slow?ms=N          answers after N ms from a timer on the worker's
//                              loop, standing in for a call to a backend
//
// Errors are JSON ({"error": "..."}): 400 for a body that is not JSON (from
// req.json()) or a malformed id, 415 for a body that is not declared JSON,
// 422 for a todo that fails validation, 404 for an unknown id.
//
// The store lives in each worker process: with several workers, each has its
// own todos. A real service keeps its state in a database; run this example
// with --workers 1 to see one consistent store.
#include <herd/herd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace {

using nlohmann::json;

struct Todo {
  std::string title;
  bool done = false;
};

json to_json(std::uint64_t id, const Todo& todo) {
  return {{"id", id}, {"title", todo.title}, {"done", todo.done}};
}

void fail(herd::Response& res, unsigned status, const std::string& message) {
  res.status(status).json({{"error", message}});
}

// True for "application/json", in any case, with or without parameters
// ("; charset=utf-8"): media types are case-insensitive (RFC 9110 8.3.1).
bool is_json(std::string_view content_type) {
  std::string_view type = content_type.substr(0, content_type.find(';'));
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.remove_suffix(1);
  constexpr std::string_view kJson = "application/json";
  return type.size() == kJson.size() &&
         std::equal(type.begin(), type.end(), kJson.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == b;
         });
}

std::optional<std::uint64_t> parse_id(std::string_view text) {
  std::uint64_t id = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (error != std::errc() || end != text.data() + text.size() || id == 0) return std::nullopt;
  return id;
}

// Checks the fields of a todo in `body` and applies them to `todo`.
// `require_title`: PUT and POST need the title, PATCH does not.
std::optional<std::string> apply(const json& body, Todo& todo, bool require_title) {
  if (!body.is_object()) return "the body must be a JSON object";
  for (const auto& [key, value] : body.items()) {
    if (key != "title" && key != "done") return "unknown field '" + key + "'";
  }
  if (body.contains("title")) {
    const json& title = body["title"];
    if (!title.is_string()) return "'title' must be a string";
    auto length = title.get_ref<const std::string&>().size();
    if (length == 0 || length > 200) return "'title' must be 1 to 200 bytes";
    todo.title = title.get<std::string>();
  } else if (require_title) {
    return "'title' is required";
  }
  if (body.contains("done")) {
    if (!body["done"].is_boolean()) return "'done' must be true or false";
    todo.done = body["done"].get<bool>();
  }
  return std::nullopt;
}

class TodoStore {
 public:
  void install(herd::App& app) {
    // Bodies must be declared JSON.
    app.use("/todos", [](herd::Request& req, herd::Response& res, herd::Next& next) {
      bool has_body = req.method() == "POST" || req.method() == "PUT" || req.method() == "PATCH";
      if (has_body && !is_json(req.header("Content-Type").value_or(""))) {
        return fail(res, 415, "send the body as Content-Type: application/json");
      }
      next();
    });

    app.get("/todos", [this](herd::Request& req, herd::Response& res) {
      std::optional<std::string_view> done = req.query("done");
      if (done && *done != "true" && *done != "false") {
        return fail(res, 400, "'done' must be true or false");
      }
      json list = json::array();
      for (const auto& [id, todo] : todos_) {
        if (!done || todo.done == (*done == "true")) list.push_back(to_json(id, todo));
      }
      res.json(list);
    });

    app.post("/todos", [this](herd::Request& req, herd::Response& res) {
      Todo todo;
      if (auto error = apply(req.json(), todo, /*require_title=*/true))
        return fail(res, 422, *error);
      std::uint64_t id = next_id_++;
      todos_.emplace(id, todo);
      res.status(201).set("Location", "/todos/" + std::to_string(id)).json(to_json(id, todo));
    });

    app.get("/todos/:id", [this](herd::Request& req, herd::Response& res) {
      if (auto found = find(req, res)) res.json(to_json((*found)->first, (*found)->second));
    });

    auto update = [this](bool replace) {
      return [this, replace](herd::Request& req, herd::Response& res) {
        auto found = find(req, res);
        if (!found) return;
        Todo todo = replace ? Todo{} : (*found)->second;
        if (auto error = apply(req.json(), todo, replace)) return fail(res, 422, *error);
        (*found)->second = todo;
        res.json(to_json((*found)->first, todo));
      };
    };
    app.put("/todos/:id", update(/*replace=*/true));
    app.patch("/todos/:id", update(/*replace=*/false));

    app.del("/todos/:id", [this](herd::Request& req, herd::Response& res) {
      if (auto found = find(req, res)) {
        todos_.erase(*found);
        res.status(204).end();
      }
    });
  }

 private:
  using Iterator = std::map<std::uint64_t, Todo>::iterator;

  // The todo named by :id, or nullopt with the error response sent.
  std::optional<Iterator> find(herd::Request& req, herd::Response& res) {
    std::optional<std::uint64_t> id = parse_id(req.param("id"));
    if (!id) {
      fail(res, 400, "id must be a positive integer");
      return std::nullopt;
    }
    auto found = todos_.find(*id);
    if (found == todos_.end()) {
      fail(res, 404, "no todo " + std::to_string(*id));
      return std::nullopt;
    }
    return found;
  }

  std::map<std::uint64_t, Todo> todos_;
  std::uint64_t next_id_ = 1;
};

// The asynchronous route: the handler returns at once, keeping the response;
// a timer on the worker's loop completes it. If the client leaves first, the
// timer is cancelled.
void install_slow(herd::App& app) {
  app.get("/slow", [](herd::Request& req, herd::Response& res) {
    std::optional<std::uint64_t> ms = parse_id(req.query("ms").value_or("1"));
    if (!ms || *ms > 10000) return fail(res, 400, "'ms' must be 1 to 10000");
    auto started = std::chrono::steady_clock::now();
    herd::Loop::TimerId timer =
        herd::loop().after(std::chrono::milliseconds(*ms), [res, started]() mutable {
          auto waited = std::chrono::steady_clock::now() - started;
          res.json({{"waited_ms",
                     std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()}});
        });
    res.on_abort([timer] { herd::loop().cancel(timer); });
  });
}

}  // namespace

int main(int argc, char** argv) {
  herd::App app;
  // Errors as JSON, like the rest of the API: a body that is not JSON
  // (req.json() throws HttpError 400) and any unexpected failure (500).
  app.on_error([](herd::Request&, herd::Response& res, unsigned status,
                  const std::string& message) { fail(res, status, message); });
  TodoStore store;
  store.install(app);
  install_slow(app);
  return herd::run(app, argc, argv);
}
