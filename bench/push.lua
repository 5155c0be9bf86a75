-- wrk script: PUT the same function push body to a rotating set of existing groups.
--
--   wrk -t1 -c16 -d8s -s bench/push.lua http://127.0.0.1:PORT -- BODY_FILE GROUPS [CONTENT_TYPE] [METHOD] [PATH_PREFIX] [VARY] [AUTH]
--
-- BODY_FILE     the push body (bench/workload.py writes it; both gateways get the same bytes)
-- GROUPS        N: request i goes to /metrics/job/bench/instance/(i mod N), groups 0..N-1,
--               which the loader has already created. 0 means "POST/PUT to PATH_PREFIX as is"
--               (used for the OTLP body, where there are no groups)
-- CONTENT_TYPE  default "text/plain; version=0.0.4; charset=utf-8"
-- METHOD        default PUT
-- PATH_PREFIX   default /metrics/job/bench/instance/
-- VARY          a value in the body (e.g. the duration "0.137") that each request replaces with
--               another one, "0.001" to "0.997", as every invocation of a function measures its
--               own duration; empty (the default) sends the body unchanged
-- AUTH          an Authorization header value for every request (bench/scenario_security.py)
--
-- Why rotate over the existing groups, rather than push to one group or to new groups:
--  * pushing to existing groups keeps the store at the size being measured for the whole run
--    (a PUT of the same body replaces the group on the Pushgateway and adds to the same series on
--    otelgravel: no new series either way), so "throughput at 20,000 groups" stays exactly that;
--    pushing to new groups would grow the store during the measurement;
--  * rotating over all of them, rather than hammering one group, is what many short-lived functions
--    do (each invocation or instance has its own grouping key), and it denies either gateway the
--    benefit of one hot group in its caches (e.g. a scrape cache that only re-renders one group);
--  * the Pushgateway's cost per push depends on the whole store (its consistency check gathers
--    every stored metric), not on the group pushed to, so the rotation does not disadvantage it.
-- With GROUPS = 1 this is the one-group case.

local body
local groups = 1
local ctype = "text/plain; version=0.0.4; charset=utf-8"
local method = "PUT"
local prefix = "/metrics/job/bench/instance/"
local vary = nil
local counter = 0
local sent = 0

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

function init(args)
   local path = args[1]
   if path == nil then
      error("usage: -- BODY_FILE GROUPS [CONTENT_TYPE] [METHOD] [PATH_PREFIX]")
   end
   local f = assert(io.open(path, "rb"))
   body = f:read("*a")
   f:close()
   groups = tonumber(args[2] or "1")
   if args[3] and args[3] ~= "" then ctype = args[3] end
   if args[4] and args[4] ~= "" then method = args[4] end
   if args[5] and args[5] ~= "" then prefix = args[5] end
   if args[6] and args[6] ~= "" then vary = args[6]:gsub("%p", "%%%0") end
   -- threads start at different offsets so that they do not push to the same group in lockstep
   if groups > 0 then
      counter = ((id or 0) * 7919) % groups
   end
   wrk.headers["Content-Type"] = ctype
   if args[7] and args[7] ~= "" then wrk.headers["Authorization"] = args[7] end
end

function request()
   local path = prefix
   if groups > 0 then
      path = prefix .. counter
      counter = counter + 1
      if counter >= groups then counter = 0 end
   end
   if vary then
      sent = sent + 1
      local value = string.format("0.%03d", sent % 997 + 1)
      return wrk.format(method, path, nil, (body:gsub(vary, value)))
   end
   return wrk.format(method, path, nil, body)
end

-- One JSON line on stdout for bench/run.py; times in microseconds as wrk measures them.
function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"latency_us": {"mean": %.1f, "stdev": %.1f, "max": %d, "p50": %d, "p90": %d, "p99": %d}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.mean, latency.stdev, latency.max,
      latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
