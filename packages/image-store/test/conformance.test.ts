import { openStore } from "../src/index.js";
import { imageStoreSuite, referenceStoreSuite } from "../src/testsuite.js";
import { tempRoot } from "./helpers.js";

async function fsFixture() {
  const { dir, cleanup } = await tempRoot("berth-image-store-conf-");
  const store = await openStore({ root: dir });
  return {
    store,
    reopen: () => openStore({ root: dir }),
    cleanup: async () => {
      await store.close();
      await cleanup();
    },
  };
}

imageStoreSuite("fs", fsFixture);
referenceStoreSuite("fs", fsFixture);
