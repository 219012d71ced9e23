-- POST a new record per request.
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  local body = string.format('{"text":"bench post %d","author":"user%03d","likes":%d,"tags":["go"]}', n, n % 500, n % 1000)
  return wrk.format("POST", "/api/collections/items/records", nil, body)
end
