// herdctl's exit statuses, as `herdctl --help` states them.
#pragma once

namespace herd::ctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRefused =
    1;  // the master answered ok:false (reload --wait: or it failed)
inline constexpr int kExitNoAnswer = 2;  // usage error, or no (valid) answer from the master

}  // namespace herd::ctl
