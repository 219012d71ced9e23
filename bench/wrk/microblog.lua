-- The microblog mix from shared/microblog.md, per request:
-- 60% GET one post with expand=author, 20% list 20 newest posts,
-- 10% list posts by an author, 7% create a post, 3% like a post.
-- TOKENS_FILE holds "userId token" lines; POSTS and USERS size the seed.
local users, tokens = {}, {}
for line in io.lines(os.getenv("TOKENS_FILE")) do
  local id, tok = line:match("^(%S+) (%S+)$")
  if id then users[#users + 1] = id; tokens[#tokens + 1] = tok end
end
local posts = tonumber(os.getenv("POSTS"))
local nusers = tonumber(os.getenv("USERS"))
local n = 0
local function post_id() return string.format("p%014d", math.random(posts)) end
local function user_id() return string.format("u%014d", math.random(nusers)) end

request = function()
  local r = math.random(100)
  if r <= 60 then
    return wrk.format("GET", "/api/collections/posts/records/" .. post_id() .. "?expand=author")
  elseif r <= 80 then
    return wrk.format("GET", "/api/collections/posts/records?sort=-created&perPage=20")
  elseif r <= 90 then
    return wrk.format("GET", "/api/collections/posts/records?sort=-created&perPage=20&filter=author%3D%22" .. user_id() .. "%22")
  end
  local i = math.random(#users)
  local h = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. tokens[i] }
  n = n + 1
  if r <= 97 then
    return wrk.format("POST", "/api/collections/posts/records", h,
      string.format('{"author":"%s","text":"benchmark post %d from wrk"}', users[i], n))
  end
  return wrk.format("POST", "/api/collections/likes/records", h,
    string.format('{"user":"%s","post":"%s"}', users[i], post_id()))
end

-- Each wrk thread has its own Lua state: count per thread, sum in done.
local threads = {}
setup = function(thread)
  threads[#threads + 1] = thread
  thread:set("thread_id", #threads)
end
-- Without a per-thread seed every thread replays the same sequence (and
-- "likes" the same posts twice).
init = function(args) math.randomseed(os.time() * 100 + thread_id) end
codes = {}
last_error = ""
response = function(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
  if status >= 400 then last_error = status .. " " .. body end
end

done = function(summary, latency, requests)
  local total, errs = {}, {}
  for _, t in ipairs(threads) do
    for code, count in pairs(t:get("codes")) do total[code] = (total[code] or 0) + count end
    local e = t:get("last_error")
    if e ~= "" then errs[#errs + 1] = e end
  end
  local parts = {}
  for code, count in pairs(total) do parts[#parts + 1] = code .. "=" .. count end
  table.sort(parts)
  io.write("Status codes: " .. table.concat(parts, " ") .. "\n")
  for _, e in ipairs(errs) do io.write("Last error: " .. e:sub(1, 300) .. "\n") end
end
