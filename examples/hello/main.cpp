// hello: the Express program herd grew from, on herd's worker API.
//
//   const app = express();
//   app.get('/', (req, res) => res.send('Hello World!'));
//
// Everything else is answered 404 "Cannot <METHOD> <path>" by the App. This is
// also the default worker, herd-worker. Run it with: herd --exec ./hello
#include <herd/herd.h>

int main(int argc, char** argv) {
  herd::App app;
  app.get("/", [](herd::Request&, herd::Response& res) { res.send("Hello World!"); });
  return herd::run(app, argc, argv);
}
