using System.Text.Json.Serialization;

namespace Rafs.Daemon;

/// <summary>Body of POST /api/v1/mounts.</summary>
public sealed class MountRequest
{
    [JsonPropertyName("reference")] public string Reference { get; set; } = "";
    [JsonPropertyName("mountpoint")] public string MountPoint { get; set; } = "";
    [JsonPropertyName("plain_http")] public bool PlainHttp { get; set; }
    [JsonPropertyName("ca_file")] public string? CaFile { get; set; }
    [JsonPropertyName("credentials")] public string? Credentials { get; set; }
    [JsonPropertyName("docker_config")] public string? DockerConfig { get; set; }
    [JsonPropertyName("mirrors")] public List<string> Mirrors { get; set; } = [];
    [JsonPropertyName("timeout_ms")] public int? TimeoutMs { get; set; }
    [JsonPropertyName("retries")] public int? Retries { get; set; }
    /// <summary>auto (default: fanotify, else fscache, else fuse), fanotify, fscache or fuse.</summary>
    [JsonPropertyName("frontend")] public string? Frontend { get; set; }
}

public sealed class BlobStatus
{
    [JsonPropertyName("digest")] public string Digest { get; set; } = "";
    [JsonPropertyName("device_size")] public long DeviceSize { get; set; }
    [JsonPropertyName("chunks")] public int Chunks { get; set; }
    [JsonPropertyName("filled_chunks")] public int FilledChunks { get; set; }
    [JsonPropertyName("filled_bytes")] public long FilledBytes { get; set; }
    [JsonPropertyName("fetched_bytes")] public long FetchedBytes { get; set; }
    [JsonPropertyName("fetched_chunks")] public long FetchedChunks { get; set; }
    [JsonPropertyName("requests")] public long Requests { get; set; }
    [JsonPropertyName("failures")] public long Failures { get; set; }
    [JsonPropertyName("complete")] public bool Complete { get; set; }
    [JsonPropertyName("marked")] public bool Marked { get; set; }
}

public sealed class MountStatus
{
    [JsonPropertyName("mountpoint")] public string MountPoint { get; set; } = "";
    [JsonPropertyName("reference")] public string Reference { get; set; } = "";
    [JsonPropertyName("manifest")] public string Manifest { get; set; } = "";
    [JsonPropertyName("bootstrap")] public string Bootstrap { get; set; } = "";
    [JsonPropertyName("frontend")] public string Frontend { get; set; } = "";
    /// <summary>Bytes this image's source served (bootstrap, chunk tables, chunks), and its request and retry counts.</summary>
    [JsonPropertyName("backend_bytes")] public long BackendBytes { get; set; }
    [JsonPropertyName("backend_requests")] public long BackendRequests { get; set; }
    [JsonPropertyName("backend_retries")] public long BackendRetries { get; set; }
    [JsonPropertyName("blobs")] public List<BlobStatus> Blobs { get; set; } = [];
}

public sealed class DaemonStatus
{
    [JsonPropertyName("pid")] public int Pid { get; set; }
    [JsonPropertyName("supervisor_pid")] public int SupervisorPid { get; set; }
    [JsonPropertyName("worker_restarts")] public int WorkerRestarts { get; set; }
    [JsonPropertyName("socket")] public string Socket { get; set; } = "";
    [JsonPropertyName("cache_dir")] public string CacheDirectory { get; set; } = "";
    [JsonPropertyName("uptime_s")] public double UptimeSeconds { get; set; }
    [JsonPropertyName("mounts")] public int Mounts { get; set; }
    [JsonPropertyName("events")] public long Events { get; set; }
    [JsonPropertyName("events_filled")] public long EventsFilled { get; set; }
    [JsonPropertyName("events_denied")] public long EventsDenied { get; set; }
    /// <summary>Wall time spent in events that had to fetch (sum over handler threads).</summary>
    [JsonPropertyName("fill_seconds")] public double FillSeconds { get; set; }
    [JsonPropertyName("orphans_denied")] public int OrphansDenied { get; set; }
    /// <summary>Frontends this kernel and daemon offer, in the order <c>auto</c> tries them.</summary>
    [JsonPropertyName("frontends")] public List<FrontendStatus> Frontends { get; set; } = [];
}

public sealed class FrontendStatus
{
    [JsonPropertyName("name")] public string Name { get; set; } = "";
    /// <summary>Requests from the kernel (fanotify events, cachefiles messages, FUSE requests).</summary>
    [JsonPropertyName("requests")] public long Requests { get; set; }
    [JsonPropertyName("fills")] public long Fills { get; set; }
    [JsonPropertyName("errors")] public long Errors { get; set; }
    [JsonPropertyName("fill_seconds")] public double FillSeconds { get; set; }
}

public sealed class ErrorResponse
{
    [JsonPropertyName("error")] public string Error { get; set; } = "";
}

/// <summary>What the daemon persists about each mount, so a restarted worker takes its mounts over.</summary>
public sealed class MountRecord
{
    [JsonPropertyName("request")] public MountRequest Request { get; set; } = new();
    [JsonPropertyName("manifest")] public string Manifest { get; set; } = "";
    [JsonPropertyName("bootstrap")] public string Bootstrap { get; set; } = "";
    /// <summary>The frontend that made the mount (a restarted worker serves it through the same one).</summary>
    [JsonPropertyName("frontend")] public string Frontend { get; set; } = "fanotify";
    /// <summary>Chunk-table digests from the manifest, by blob digest.</summary>
    [JsonPropertyName("tables")] public Dictionary<string, string> Tables { get; set; } = [];
}

[JsonSourceGenerationOptions(WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(MountRequest))]
[JsonSerializable(typeof(MountStatus))]
[JsonSerializable(typeof(List<MountStatus>))]
[JsonSerializable(typeof(DaemonStatus))]
[JsonSerializable(typeof(ErrorResponse))]
[JsonSerializable(typeof(List<MountRecord>))]
public sealed partial class DaemonJson : JsonSerializerContext;
