// herd's worker API in one include: App, Request, Response (herd/app.h), the
// worker's loop (herd/loop.h) and run (herd/run.h).
#pragma once

#include "herd/app.h"
#include "herd/loop.h"
#include "herd/router.h"
#include "herd/run.h"
