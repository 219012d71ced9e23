// Schema calls through the SDK's collections service, with definitions in
// PocketBase's own shape.
import { test } from "node:test";
import assert from "node:assert/strict";
import { superuser } from "./common.mjs";

test("collections.import with a PocketBase-shaped definition, getOne, getFullList", async () => {
  const pb = await superuser();
  const ok = await pb.collections.import([
    {
      id: "pbc_notes_0001",
      name: "imp_notes",
      type: "base",
      listRule: "",
      viewRule: "",
      createRule: "",
      fields: [
        { id: "text3208210256", name: "id", type: "text", system: true, primaryKey: true, autogeneratePattern: "[a-z0-9]{15}", min: 15, max: 15 },
        { id: "text1", name: "text", type: "text", required: true, min: 0, max: 0, presentable: true },
        { id: "number1", name: "rank", type: "number", noDecimal: true, min: null, max: null },
      ],
      indexes: ["CREATE UNIQUE INDEX `idx_imp_notes_text` ON `imp_notes` (`text`)"],
    },
  ]);
  assert.equal(ok, true);
  const c = await pb.collections.getOne("imp_notes");
  assert.equal(c.id, "pbc_notes_0001");
  assert.equal(c.fields[0].name, "id");
  const all = await pb.collections.getFullList({ batch: 2 });
  assert.ok(all.some((x) => x.name === "imp_notes"));
  const rec = await pb.collection("imp_notes").create({ text: "one", rank: 2 });
  assert.equal(rec.rank, 2);
  await assert.rejects(pb.collection("imp_notes").create({ text: "one" }), { status: 400 });
  await assert.rejects(pb.collection("imp_notes").create({ text: "two", rank: 2.5 }), { status: 400 });
});
