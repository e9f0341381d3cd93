-- wrk script: every request carries the next bearer token from a file.
--
--   wrk [options] -s rotating_bearer.lua URL -- /absolute/path/tokens.txt START THREADS [HEADER PREFIX]
--
-- HEADER (default Authorization) is the header each line goes into, after PREFIX
-- (default "Bearer "): the DPoP case sends a new proof in the DPoP header this way.
-- The file holds one access token per line (run.py writes it). The threads share one
-- stream of positions, interleaved: thread i sends the tokens at START + i,
-- START + i + THREADS, START + i + 2 * THREADS... (modulo the number of tokens). At
-- the end the script prints "rotating_bearer: next N", the first position no thread
-- reached, and run.py passes it as START of the next run. So the whole case walks
-- the file in order, and about as many requests as there are tokens pass between two
-- uses of the same token: with many more tokens than the server's verified-token
-- cache holds, every request is a cache miss. Headers given with --header are kept.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  threads[#threads + 1] = thread
end

function init(args)
  local path, start, stride = args[1], tonumber(args[2]), tonumber(args[3])
  assert(path and start and stride, "usage: ... -- TOKENS_FILE START THREADS [HEADER PREFIX]")
  header = args[4] or "Authorization"
  prefix = args[5] or "Bearer "
  local file = assert(io.open(path, "r"))
  tokens = {}
  for line in file:lines() do
    if #line > 0 then
      tokens[#tokens + 1] = prefix .. line
    end
  end
  file:close()
  assert(#tokens > 0, "no tokens in " .. path)
  step = stride
  position = start + id
  headers = {}
  for name, value in pairs(wrk.headers) do
    headers[name] = value
  end
end

function request()
  headers[header] = tokens[position % #tokens + 1]
  position = position + step
  return wrk.format(nil, nil, headers)
end

function done(summary, latency, requests)
  local furthest = 0
  for _, thread in ipairs(threads) do
    furthest = math.max(furthest, thread:get("position"))
  end
  io.write(string.format("rotating_bearer: next %d\n", furthest))
end
