-- GET one record by a random seeded id (ids from the file in IDS_FILE).
local ids = {}
for line in io.lines(os.getenv("IDS_FILE")) do
  if #line > 0 then ids[#ids + 1] = line end
end
local prefix = os.getenv("PATH_PREFIX") or "/api/collections/items/records/"
request = function()
  return wrk.format("GET", prefix .. ids[math.random(#ids)])
end
