import { describe, expect, it } from "vitest";
import { goContainerConfig, goHistory, goRestoredImageConfig, goString, goTime } from "./gojson.js";

describe("Go encoding/json compatibility", () => {
  it("escapes strings as Go does (HTML-safe, U+2028/9, control characters)", () => {
    expect(goString("a<b>&c")).toBe('"a\\u003cb\\u003e\\u0026c"');
    expect(goString("line\nbreak\ttab\r")).toBe('"line\\nbreak\\ttab\\r"');
    expect(goString("\u0001\u001f\b\f")).toBe('"\\u0001\\u001f\\u0008\\u000c"');
    expect(goString("\u2028\u2029")).toBe('"\\u2028\\u2029"');
    expect(goString('q"\\')).toBe('"q\\"\\\\"');
    expect(goString("é😀")).toBe('"é😀"');
    expect(goString("\ud800x")).toBe('"\ufffdx"');
  });

  it("formats times like time.Time.MarshalJSON after parsing", () => {
    expect(goTime("2024-01-02T03:04:05.120000000Z")).toBe('"2024-01-02T03:04:05.12Z"');
    expect(goTime("2024-01-02T03:04:05.000Z")).toBe('"2024-01-02T03:04:05Z"');
    expect(goTime("2024-01-02T03:04:05.5+02:00")).toBe('"2024-01-02T03:04:05.5+02:00"');
    expect(goTime(undefined)).toBe('"0001-01-01T00:00:00Z"');
    expect(() => goTime("yesterday")).toThrow(RangeError);
  });

  it("writes container.Config in struct order with omitempty and sorted map keys", () => {
    expect(goContainerConfig({})).toBe(
      '{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}',
    );
    const full = goContainerConfig({
      ExposedPorts: { "80/tcp": {}, "443/tcp": {} },
      Env: [],
      Cmd: ["a"],
      Healthcheck: { Test: ["CMD", "true"], Interval: 1000, Retries: 3 },
      ArgsEscaped: true,
      Volumes: { "/b": {}, "/a": {} },
      Labels: { z: "1", a: "2" },
      StopSignal: "SIGINT",
      StopTimeout: 0,
      Shell: ["sh", "-c"],
    });
    expect(full).toContain('"ExposedPorts":{"443/tcp":{},"80/tcp":{}},"Tty"');
    expect(full).toContain('"Env":[],"Cmd":["a"],"Healthcheck":{"Test":["CMD","true"],"Interval":1000,"Retries":3},"ArgsEscaped":true,"Image"');
    expect(full).toContain('"Volumes":{"/a":{},"/b":{}}');
    expect(full).toContain('"Labels":{"a":"2","z":"1"},"StopSignal":"SIGINT","StopTimeout":0,"Shell":["sh","-c"]}');
  });

  it("writes history entries and restored configs with sorted top-level keys", () => {
    expect(goHistory({ created_by: "x", empty_layer: true, comment: "" })).toBe('{"created":"0001-01-01T00:00:00Z","created_by":"x","empty_layer":true}');
    const json = goRestoredImageConfig({
      config: { Cmd: ["c"] },
      architecture: "amd64",
      os: "linux",
      created: "2024-01-01T00:00:00Z",
      dockerVersion: "20.10.24",
      diffIds: [],
      history: [{ created: "2024-01-01T00:00:00Z", created_by: "c", empty_layer: true }],
    });
    expect(Object.keys(JSON.parse(json))).toEqual(["architecture", "config", "container_config", "created", "docker_version", "history", "os", "rootfs"]);
    expect(json.endsWith('"rootfs":{"type":"layers"}}')).toBe(true);
  });
});
