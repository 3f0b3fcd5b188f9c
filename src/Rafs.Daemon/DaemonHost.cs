using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Rafs.Interop;

namespace Rafs.Daemon;

/// <summary>Where the daemon keeps its socket, state and cache, and how many handler threads it runs.</summary>
public sealed record DaemonOptions
{
    public const string DefaultSocket = "/run/rafs/rafsd.sock";
    public const string DefaultStateDirectory = "/var/lib/rafs";

    public string Socket { get; init; } = Environment.GetEnvironmentVariable("RAFS_SOCKET") ?? DefaultSocket;
    /// <summary>Holds mounts.json and the blob cache (cache/); must be on ext4, xfs or btrfs for fanotify marks.</summary>
    public string StateDirectory { get; init; } = Environment.GetEnvironmentVariable("RAFS_STATE_DIR") ?? DefaultStateDirectory;
    public int Threads { get; init; } = 4;
    /// <summary>Read amplification per miss (see <see cref="Rafs.Storage.OnDemandBlob.AmplifyBytes"/>).</summary>
    public int AmplifyBytes { get; init; } =
        int.TryParse(Environment.GetEnvironmentVariable("RAFS_READAHEAD_BYTES"), out var a) ? a : Rafs.Storage.OnDemandBlob.DefaultAmplifyBytes;
}

/// <summary>
/// The worker: fanotify handlers, the mounts, and the HTTP API on a unix socket (Kestrel; routes matched by hand
/// so NativeAOT needs no reflection). Shutting down cleanly unmounts everything and removes every mark.
/// </summary>
public static class DaemonHost
{
    public static void Log(string message) =>
        Console.Error.WriteLine($"{DateTime.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} rafsd[{Environment.ProcessId}] {message}");

    /// <param name="channels">The supervisor's fanotify group and cachefiles device (inherited), or this process's own when unsupervised.</param>
    public static int Run(DaemonOptions options, KernelChannels channels, int supervisorPid, int restarts)
    {
        var started = Stopwatch.StartNew();
        var frontends = new List<IMountFrontend>();
        FanotifyFrontend? fanotify = null;
        FscacheFrontend? fscache = null;
        int orphans = 0;
        if (channels.Fanotify is { } group)
        {
            fanotify = new FanotifyFrontend(group, Log);
            frontends.Add(fanotify);
            if (channels.Inherited)
            {
                orphans = group.DenyOrphanedEvents();
                if (orphans > 0) Log($"answered {orphans} read(s) the previous worker left unanswered with EIO");
            }
        }
        if (channels.Cachefiles is { } cachefiles)
        {
            fscache = new FscacheFrontend(cachefiles, Log);
            frontends.Add(fscache);
        }
        if (FuseDevice.IsPresent) frontends.Add(new FuseFrontend(options.Threads, Log));
        var manager = new MountManager(options.StateDirectory, frontends, Log, options.AmplifyBytes);
        int attached = manager.Reattach();
        fanotify?.Start(options.Threads);
        fscache?.Start(options.Threads, restore: channels.Inherited);
        Log($"frontends: {(frontends.Count == 0 ? "none" : string.Join(", ", frontends.Select(f => f.Name)))}");

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(options.Socket))!);
        File.Delete(options.Socket);
        // The empty builder: no configuration files, hence no file watcher on the content root. The slim builder's
        // recursive watch of the working directory (often "/") took minutes on large or remote trees.
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { Args = [], ContentRootPath = options.StateDirectory });
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k => k.ListenUnixSocket(options.Socket));
        var app = builder.Build();
        app.Run(context => Route(context, manager, app.Lifetime, () => new DaemonStatus
        {
            Pid = Environment.ProcessId,
            SupervisorPid = supervisorPid,
            WorkerRestarts = restarts,
            Socket = Path.GetFullPath(options.Socket),
            CacheDirectory = manager.Cache.Directory,
            UptimeSeconds = started.Elapsed.TotalSeconds,
            Mounts = manager.Count,
            Events = fanotify?.Events ?? 0,
            EventsFilled = fanotify?.EventsThatFilled ?? 0,
            EventsDenied = fanotify?.Denied ?? 0,
            FillSeconds = fanotify?.FillTime.TotalSeconds ?? 0,
            OrphansDenied = orphans,
            Frontends = frontends.Select(f => (f.Name, Counters: f.Counters)).Select(f => new FrontendStatus
            {
                Name = f.Name,
                Requests = f.Counters.Requests,
                Fills = f.Counters.Fills,
                Errors = f.Counters.Errors,
                FillSeconds = f.Counters.FillTime.TotalSeconds,
            }).ToList(),
        }));
        app.Start();
        File.SetUnixFileMode(options.Socket, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Log($"listening on {options.Socket}; cache {manager.Cache.Directory}; {attached} mount(s) taken over");
        app.WaitForShutdown();
        Log("shutting down: unmounting everything");
        manager.Dispose();
        foreach (var f in frontends) f.Dispose();
        channels.Dispose();
        File.Delete(options.Socket);
        Log("stopped");
        return 0;
    }

    private static async Task Route(HttpContext context, MountManager manager, IHostApplicationLifetime lifetime, Func<DaemonStatus> status)
    {
        var request = context.Request;
        var path = request.Path.Value ?? "/";
        try
        {
            switch (request.Method, path)
            {
                case ("GET", "/api/v1/daemon"):
                    await Json(context, 200, status(), DaemonJson.Default.DaemonStatus);
                    return;
                case ("POST", "/api/v1/daemon/shutdown"):
                    await Json(context, 202, status(), DaemonJson.Default.DaemonStatus);
                    lifetime.StopApplication();
                    return;
                case ("GET", "/api/v1/mounts"):
                    await Json(context, 200, manager.List(), DaemonJson.Default.ListMountStatus);
                    return;
                case ("POST", "/api/v1/mounts"):
                {
                    var body = await JsonSerializer.DeserializeAsync(request.Body, DaemonJson.Default.MountRequest, context.RequestAborted)
                               ?? throw new ArgumentException("empty mount request");
                    if (string.IsNullOrEmpty(body.Reference) || string.IsNullOrEmpty(body.MountPoint))
                        throw new ArgumentException("a mount request needs 'reference' and 'mountpoint'");
                    var mounted = await Task.Run(() => manager.Mount(body));
                    await Json(context, 201, mounted, DaemonJson.Default.MountStatus);
                    return;
                }
                case ("DELETE", "/api/v1/mounts"):
                {
                    var mountPoint = request.Query["mountpoint"].ToString();
                    if (string.IsNullOrEmpty(mountPoint)) throw new ArgumentException("DELETE /api/v1/mounts needs ?mountpoint=");
                    await Task.Run(() => manager.Unmount(mountPoint));
                    context.Response.StatusCode = 204;
                    return;
                }
                case ("GET", "/metrics"):
                    context.Response.ContentType = "text/plain; version=0.0.4";
                    await context.Response.WriteAsync(Metrics(manager, status()));
                    return;
                default:
                    await Error(context, 404, $"no route {request.Method} {path}");
                    return;
            }
        }
        catch (KeyNotFoundException e) { await Error(context, 404, e.Message); }
        catch (Exception e) when (e is ArgumentException or JsonException or InvalidOperationException or DirectoryNotFoundException)
        {
            await Error(context, 400, e.Message);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or HttpRequestException or PosixException)
        {
            Log($"{request.Method} {path}: {e.Message}");
            await Error(context, 502, e.Message);
        }
    }

    private static Task Json<T>(HttpContext context, int code, T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
    {
        context.Response.StatusCode = code;
        context.Response.ContentType = "application/json";
        return JsonSerializer.SerializeAsync(context.Response.Body, value, type);
    }

    private static Task Error(HttpContext context, int code, string message) =>
        Json(context, code, new ErrorResponse { Error = message }, DaemonJson.Default.ErrorResponse);

    /// <summary>Prometheus text exposition of the daemon's counters.</summary>
    public static string Metrics(MountManager manager, DaemonStatus status)
    {
        var s = new StringBuilder();
        void Metric(string name, string type, string help, IEnumerable<(string Labels, double Value)> samples)
        {
            s.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
            s.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
            foreach (var (labels, value) in samples)
                s.Append(name).Append(labels.Length > 0 ? "{" + labels + "}" : "").Append(' ')
                 .Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }
        var mounts = manager.List();
        var blobs = mounts.SelectMany(m => m.Blobs).DistinctBy(b => b.Digest).ToList();
        Metric("rafs_mounts", "gauge", "Images mounted by this daemon.", [("", mounts.Count)]);
        Metric("rafs_worker_restarts_total", "counter", "Times the supervisor restarted a crashed worker.", [("", status.WorkerRestarts)]);
        Metric("rafs_fanotify_events_total", "counter", "Pre-content events handled.", [("", status.Events)]);
        Metric("rafs_fanotify_fill_events_total", "counter", "Events that had to fetch data.", [("", status.EventsFilled)]);
        Metric("rafs_fanotify_denied_total", "counter", "Reads answered with EIO.", [("", status.EventsDenied)]);
        Metric("rafs_frontend_requests_total", "counter", "Requests from the kernel, by frontend.", status.Frontends.Select(f => ($"frontend=\"{f.Name}\"", (double)f.Requests)));
        Metric("rafs_frontend_fills_total", "counter", "Requests that had to fetch data, by frontend.", status.Frontends.Select(f => ($"frontend=\"{f.Name}\"", (double)f.Fills)));
        Metric("rafs_frontend_errors_total", "counter", "Requests answered with EIO, by frontend.", status.Frontends.Select(f => ($"frontend=\"{f.Name}\"", (double)f.Errors)));
        Metric("rafs_blob_filled_bytes", "gauge", "Verified bytes present in the cache file.", blobs.Select(b => ($"blob=\"{b.Digest}\"", (double)b.FilledBytes)));
        Metric("rafs_blob_device_bytes", "gauge", "Size of the blob's device layout.", blobs.Select(b => ($"blob=\"{b.Digest}\"", (double)b.DeviceSize)));
        Metric("rafs_blob_fetched_bytes_total", "counter", "Stored bytes fetched for chunks.", blobs.Select(b => ($"blob=\"{b.Digest}\"", (double)b.FetchedBytes)));
        Metric("rafs_blob_chunk_failures_total", "counter", "Chunks that failed to fetch or verify.", blobs.Select(b => ($"blob=\"{b.Digest}\"", (double)b.Failures)));
        Metric("rafs_backend_bytes_total", "counter", "Bytes read from the image's source.", mounts.Select(m => ($"mountpoint=\"{m.MountPoint}\"", (double)m.BackendBytes)));
        Metric("rafs_backend_requests_total", "counter", "Requests sent to the image's source.", mounts.Select(m => ($"mountpoint=\"{m.MountPoint}\"", (double)m.BackendRequests)));
        Metric("rafs_backend_retries_total", "counter", "Requests retried after a failure.", mounts.Select(m => ($"mountpoint=\"{m.MountPoint}\"", (double)m.BackendRetries)));
        return s.ToString();
    }
}
