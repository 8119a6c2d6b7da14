/**
 * `berth pull` and `berth push`: the image service's registry pull and push
 * (`@berth/image-service`), shown as docker shows them — "Pulling from",
 * a line per layer, "Digest:", "Status:" — through the progress reporter
 * (stderr; JSON with `--progress json`), the reference on stdout. `berth
 * copy`: the service's copy between a registry, an OCI layout and the store,
 * shown the same way, the digest written on stdout.
 */
import { parseCopyLocation, type PushCompression, type RegistryEvent } from "@berth/image-service";
import { IMAGE_CONFIG_MEDIA_TYPES, MEDIA_TYPE_BUILDKIT_CACHE_CONFIG } from "@berth/oci";
import { type Command, Option } from "commander";
import { type Context, openContextService } from "../context.js";
import { humanSize } from "../format.js";
import type { Progress } from "../progress.js";

const short = (digest: string) => digest.replace(/^sha256:/, "").slice(0, 12);

/**
 * Progress of a copy, one item per layer (the config is not shown, as
 * docker does not; nor a cache's config); `resolved` gets the first event.
 */
export function copyReporter(progress: Progress, resolved: (e: Extract<RegistryEvent, { type: "resolved" }>) => void = () => {}): (e: RegistryEvent) => void {
  const layers = new Set<string>();
  return (e) => {
    if (e.type === "resolved") resolved(e);
    else if (e.type === "blob-start" && !IMAGE_CONFIG_MEDIA_TYPES.has(e.mediaType) && e.mediaType !== MEDIA_TYPE_BUILDKIT_CACHE_CONFIG) {
      layers.add(e.digest);
      progress.start(e.digest, short(e.digest), e.size);
    } else if (e.type === "blob-progress" && layers.has(e.digest)) progress.update(e.digest, e.bytes);
    else if (e.type === "blob-done" && layers.has(e.digest)) {
      const note = e.status === "mounted" ? `mounted from ${e.mountedFrom}` : e.resumedFrom ? `resumed after ${humanSize(e.resumedFrom)}` : undefined;
      progress.finish(e.digest, e.status === "exists" ? "exists" : "done", note);
    }
  };
}

/** Register `pull` and `push`. */
export function register(program: Command, ctx: Context): void {
  program
    .command("pull")
    .description("Pull an image from a registry into the store")
    .argument("<name>", "NAME[:TAG|@DIGEST]; docker.io when no registry is named")
    .option("--platform <os/arch[/variant]>", "the platform to choose from a multi-platform image (default: this machine's)")
    .option("--insecure", "reach the registry without TLS verification, or over plain http (loopback registries always are)")
    .addHelpText(
      "after",
      "\nExamples:\n  berth pull 127.0.0.1:5000/team/app:1\n  berth pull --platform linux/arm64 registry.example/app@sha256:…\n  berth pull -q busybox          # prints docker.io/library/busybox:latest",
    )
    .action(async (name: string, opts: { platform?: string; insecure?: boolean }) => {
      const svc = await openContextService(ctx);
      const progress = ctx.progress();
      const onProgress = copyReporter(progress, (e) => {
        progress.note(`${e.tag ?? e.digest}: Pulling from ${e.path}${e.platform ? ` (${e.platform})` : ""}`);
      });
      const r = await svc
        .pull(name, { ...(opts.platform !== undefined ? { platform: opts.platform } : {}), insecure: opts.insecure === true, onProgress })
        .catch((err: unknown) => {
          progress.stop();
          throw err;
        });
      progress.note(`Digest: ${r.digest}`);
      progress.summary(`Status: ${r.status === "up-to-date" ? "Image is up to date" : "Downloaded newer image"} for ${r.familiar}`, {
        reference: r.reference,
        id: r.id,
        digest: r.digest,
        manifestDigest: r.manifestDigest,
        ...(r.platform ? { platform: r.platform } : {}),
        status: r.status,
        bytes: r.bytesTransferred,
      });
      ctx.out(`${r.reference}\n`);
    });

  program
    .command("push")
    .description("Push an image from the store to a registry")
    .argument("<name>", "NAME[:TAG] (a tag in the store; :latest when none is given)")
    .option("--insecure", "reach the registry without TLS verification, or over plain http (loopback registries always are)")
    .addOption(
      new Option("--compression <format>", "how layers are sent; one stored otherwise is converted once, its digest remembered (zstd: Node 22.15+'s zlib, else the zstd program)")
        .choices(["gzip", "zstd", "none"])
        .default("gzip"),
    )
    .addHelpText(
      "after",
      "\nExamples:\n  berth tag app:1 127.0.0.1:5000/team/app:1\n  berth push 127.0.0.1:5000/team/app:1\n  berth push --compression none 127.0.0.1:5000/team/app:1   # the layer tars as they are",
    )
    .action(async (name: string, opts: { insecure?: boolean; compression: PushCompression }) => {
      const svc = await openContextService(ctx);
      const progress = ctx.progress();
      const onProgress = copyReporter(progress, (e) => progress.note(`The push refers to repository [${e.name}]`));
      const r = await svc.push(name, { insecure: opts.insecure === true, compression: opts.compression, onProgress }).catch((err: unknown) => {
        progress.stop();
        throw err;
      });
      const count = (s: string) => r.blobs.filter((b) => b.status === s).length;
      progress.summary(
        `Pushed ${count("uploaded")} blob(s) (${humanSize(r.bytesTransferred)}), ${count("mounted")} mounted, ${count("exists")} already there; manifest ${r.manifestsWritten > 0 ? "written" : "already there"}`,
        { reference: r.reference, id: r.id, digest: r.digest, size: r.size, uploaded: count("uploaded"), mounted: count("mounted"), existing: count("exists"), bytes: r.bytesTransferred },
      );
      ctx.out(ctx.globals.quiet ? `${r.familiar}\n` : `${r.tag}: digest: ${r.digest} size: ${r.size}\n`);
    });

  program
    .command("copy")
    .description("Copy an image between a registry, an OCI layout or archive and the store (skopeo's locations)")
    .argument("<source>", "docker://NAME[:TAG|@DIGEST], oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:NAME] or berth:NAME")
    .argument("<destination>", "docker://NAME[:TAG], oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:NAME] or berth:NAME[:TAG]")
    .option("--platform <os/arch[/variant]>", "the platform to take from a multi-platform image (default: this machine's)")
    .option("--all-platforms", "copy a multi-platform image whole, its index byte for byte (not into the store)")
    .option("--insecure", "reach registries without TLS verification, or over plain http (loopback registries always are)")
    .addOption(
      new Option("--compression <format>", "from the store to a registry: how layers are sent, as push sends them (other copies keep blobs as they are)")
        .choices(["gzip", "zstd", "none"])
        .default("gzip"),
    )
    .addHelpText(
      "after",
      "\nExamples:\n  berth copy berth:app:1 docker://127.0.0.1:5000/team/app:1\n  berth copy docker://127.0.0.1:5000/team/app:1 oci:./layout:v1\n  berth copy --all-platforms docker://registry.example/app:1 docker://127.0.0.1:5000/mirror/app:1\n  berth copy oci:./layout:v1 berth:app:2\n  berth copy berth:app:1 oci-archive:app.tar:v1",
    )
    .action(async (source: string, destination: string, opts: { platform?: string; allPlatforms?: boolean; insecure?: boolean; compression: PushCompression }) => {
      // bad locations fail before anything is shown
      const from = parseCopyLocation(source);
      const to = parseCopyLocation(destination);
      const svc = await openContextService(ctx);
      const progress = ctx.progress();
      progress.note(`Copying ${source} to ${destination}`);
      const r = await svc
        .copy(from, to, {
          ...(opts.platform !== undefined ? { platform: opts.platform } : {}),
          allPlatforms: opts.allPlatforms === true,
          insecure: opts.insecure === true,
          compression: opts.compression,
          onProgress: copyReporter(progress),
        })
        .catch((err: unknown) => {
          progress.stop();
          throw err;
        });
      const count = (s: string) => r.blobs.filter((b) => b.status === s).length;
      const sent = count("uploaded") + count("written");
      progress.summary(
        `Copied ${sent} blob(s) (${humanSize(r.bytesTransferred)}), ${count("mounted")} mounted, ${count("exists")} already there${r.platform ? ` (${r.platform})` : ""}; manifest ${r.manifestsWritten > 0 ? "written" : "already there"}`,
        { source: r.source, destination: r.destination, digest: r.digest, mediaType: r.mediaType, size: r.size, ...(r.platform ? { platform: r.platform } : {}), ...(r.id ? { id: r.id } : {}), copied: sent, mounted: count("mounted"), existing: count("exists"), bytes: r.bytesTransferred },
      );
      ctx.out(`${r.digest}\n`);
    });
}
