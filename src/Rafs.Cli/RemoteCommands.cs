using System.CommandLine;
using System.Text.Json;
using Rafs.Daemon;
using Rafs.Interop;
using Rafs.Storage;
using Rafs.Storage.Remote;
using Spectre.Console;

namespace Rafs.Cli;

/// <summary>push, the daemon, mounts by reference, status.</summary>
internal static class RemoteCommands
{
    /// <summary>Options every command that talks to a registry or HTTP server takes.</summary>
    private sealed class RemoteFlags
    {
        public readonly Option<bool> PlainHttp = new("--plain-http") { Description = "Talk HTTP, not HTTPS, to the registry (always so for loopback)" };
        public readonly Option<string?> CaFile = new("--ca-file") { Description = "PEM file of CA certificates to trust for the registry's TLS" };
        public readonly Option<string?> Credentials = new("--credentials") { Description = "USER:PASSWORD for the registry (default: from ~/.docker/config.json)" };
        public readonly Option<string?> DockerConfig = new("--docker-config") { Description = "Docker config.json to take credentials from" };
        public readonly Option<string[]> Mirror = new("--mirror") { Description = "Registry mirror host[:port] tried before the origin (repeatable)" };
        public readonly Option<int?> TimeoutMs = new("--timeout-ms") { Description = "Per-request timeout in ms (default 20000); a read fails with EIO after the retries" };
        public readonly Option<int?> Retries = new("--retries") { Description = "Retries after a failed request (default 3, with backoff and jitter)" };
        public readonly Option<string> Frontend = new("--frontend")
        {
            Description = "Kernel path: auto (fanotify, else fscache, else fuse), fanotify, fscache or fuse",
            DefaultValueFactory = _ => Frontends.Auto,
        };

        public void AddTo(Command c, bool mounting)
        {
            foreach (var o in new Option[] { PlainHttp, CaFile, Credentials, DockerConfig, Mirror, TimeoutMs, Retries }) c.Options.Add(o);
            if (mounting) c.Options.Add(Frontend);
        }

        public MountRequest Request(ParseResult p, string reference, string mountPoint) => new()
        {
            Reference = reference,
            MountPoint = Path.GetFullPath(mountPoint),
            PlainHttp = p.GetValue(PlainHttp),
            CaFile = p.GetValue(CaFile) is { } ca ? Path.GetFullPath(ca) : null,
            Credentials = p.GetValue(Credentials),
            DockerConfig = p.GetValue(DockerConfig) is { } dc ? Path.GetFullPath(dc) : null,
            Mirrors = [.. p.GetValue(Mirror) ?? []],
            TimeoutMs = p.GetValue(TimeoutMs),
            Retries = p.GetValue(Retries),
            Frontend = p.GetValue(Frontend),
        };
    }

    private sealed class DaemonFlags
    {
        public readonly Option<string?> Socket = new("--socket") { Description = $"Daemon API socket (default $RAFS_SOCKET or {DaemonOptions.DefaultSocket})" };
        public readonly Option<string?> StateDir = new("--state-dir") { Description = $"Daemon state and blob cache, on ext4/xfs/btrfs (default $RAFS_STATE_DIR or {DaemonOptions.DefaultStateDirectory})" };

        public void AddTo(Command c)
        {
            c.Options.Add(Socket);
            c.Options.Add(StateDir);
        }

        public DaemonOptions Options(ParseResult p, int? threads = null)
        {
            var d = new DaemonOptions();
            return d with
            {
                Socket = p.GetValue(Socket) is { } s ? Path.GetFullPath(s) : d.Socket,
                StateDirectory = p.GetValue(StateDir) is { } st ? Path.GetFullPath(st) : d.StateDirectory,
                Threads = threads ?? d.Threads,
            };
        }
    }

    private static void Log(string message) => Console.Error.WriteLine($"rafs: {message}");

    public static Command CreatePush()
    {
        var bootstrap = new Argument<string>("BOOTSTRAP") { Description = "Bootstrap written by 'rafs build --bootstrap'" };
        var reference = new Argument<string>("REF") { Description = "registry host[:port]/repo[:tag], or a directory (written as an OCI image layout)" };
        var blobDir = new Option<string>("--blob-dir") { Description = "Directory holding the bootstrap's blobs, named by sha256", Required = true };
        var remote = new RemoteFlags();
        var command = new Command("push", "Publish a bootstrap and its blobs as an OCI artifact (blobs the registry has are skipped)") { bootstrap, reference, blobDir };
        remote.AddTo(command, mounting: false);
        command.SetAction(p => CliSupport.Run(() =>
        {
            var boot = Path.GetFullPath(p.GetValue(bootstrap)!);
            var blobs = new BlobDirectory(p.GetValue(blobDir)!);
            var list = new List<(BlobDigest, string)>();
            foreach (var slot in ImageMounter.ReadDeviceTable(boot))
            {
                if (!BlobDigest.TryParse(slot.Tag, out var d)) throw new InvalidDataException($"{boot}: device tag '{slot.Tag}' is not a blob digest");
                var path = blobs.PathOf(d);
                if (!File.Exists(path)) throw new FileNotFoundException($"blob {d} is not in {blobs.Path}", path);
                list.Add((d, path));
            }
            var req = remote.Request(p, p.GetValue(reference)!, ".");
            var result = ImagePusher.Push(boot, list, ImageReference.Parse(req.Reference), MountManager.OptionsOf(req), Log);
            Console.WriteLine($"pushed {req.Reference} (manifest {result.ManifestDigest}): {result.Uploaded} blob(s) uploaded ({CliSupport.Bytes(result.UploadedBytes)}), {result.Skipped} already there");
            return 0;
        }));
        return command;
    }

    public static void AddMountOptions(Command command, out Func<ParseResult, string, string, int> mount)
    {
        var remote = new RemoteFlags();
        var daemon = new DaemonFlags();
        var noStart = new Option<bool>("--no-start") { Description = "Fail instead of starting a daemon when none runs" };
        remote.AddTo(command, mounting: true);
        daemon.AddTo(command);
        command.Options.Add(noStart);
        mount = (p, reference, mountPoint) =>
        {
            using var client = DaemonClient.Connect(daemon.Options(p), start: !p.GetValue(noStart), Log);
            var status = client.Mount(remote.Request(p, reference, mountPoint));
            Console.WriteLine($"mounted {status.Reference} on {status.MountPoint} ({status.Blobs.Count} blob(s), {status.Frontend}, daemon {client.Socket})");
            return 0;
        };
    }

    public static void AddUmountOptions(Command command, out Func<ParseResult, string, bool> unmount)
    {
        var daemon = new DaemonFlags();
        daemon.AddTo(command);
        unmount = (p, mountPoint) =>
        {
            using var client = new DaemonClient(daemon.Options(p).Socket);
            if (!client.IsRunning()) return false;
            var full = Path.GetFullPath(mountPoint);
            if (!client.List().Any(m => m.MountPoint == full)) return false;
            client.Unmount(full);
            return true;
        };
    }

    public static Command CreateDaemon()
    {
        var daemon = new DaemonFlags();
        var threads = new Option<int>("--threads") { Description = "Request threads per frontend (fanotify, cachefiles) and per FUSE mount", DefaultValueFactory = _ => 4 };
        var noSupervisor = new Option<bool>("--no-supervisor") { Description = "Run the worker alone (a crash then fails open: unfilled reads return zeros)" };
        var amplify = new Option<string?>("--readahead") { Description = "Ceiling of the read-ahead window a sequential miss adds to its request (default 4M, $RAFS_READAHEAD_BYTES; 0 = fetch only what is read)" };
        var worker = new Option<bool>("--worker") { Hidden = true };
        var fanotifyFd = new Option<int?>("--fanotify-fd") { Hidden = true };
        var cachefilesFd = new Option<int?>("--cachefiles-fd") { Hidden = true };
        var command = new Command("daemon", "Run the Rafs daemon in the foreground: kernel frontends (fanotify, fscache, FUSE), mounts, API on a unix socket")
        {
            threads, amplify, noSupervisor, worker, fanotifyFd, cachefilesFd,
        };
        daemon.AddTo(command);
        command.SetAction(p => CliSupport.Run(() =>
        {
            var options = daemon.Options(p, p.GetValue(threads));
            if (p.GetValue(amplify) is { } a) options = options with { AmplifyBytes = checked((int)CliSupport.ParseSize(a)) };
            if (!p.GetValue(worker) && !p.GetValue(noSupervisor))
            {
                using var existing = new DaemonClient(options.Socket);
                if (existing.IsRunning()) throw new InvalidOperationException($"a daemon already answers on {options.Socket}");
                return Supervisor.Run(options);
            }
            int.TryParse(Environment.GetEnvironmentVariable("RAFS_SUPERVISOR_PID"), out int supervisor);
            int.TryParse(Environment.GetEnvironmentVariable("RAFS_WORKER_RESTARTS"), out int restarts);
            var channels = p.GetValue(fanotifyFd) is { } fd
                ? KernelChannels.Adopt(fd, p.GetValue(cachefilesFd) ?? -1)
                : KernelChannels.Open(options, Log);
            return DaemonHost.Run(options, channels, supervisor, restarts);
        }));

        var stop = new Command("stop", "Unmount everything the daemon serves and stop it");
        var stopFlags = new DaemonFlags();
        stopFlags.AddTo(stop);
        stop.SetAction(p => CliSupport.Run(() =>
        {
            var options = stopFlags.Options(p);
            using var client = new DaemonClient(options.Socket);
            var status = client.Status();
            client.Shutdown();
            WaitGone(status.SupervisorPid > 0 ? status.SupervisorPid : status.Pid);
            Console.WriteLine($"daemon {status.Pid} stopped");
            return 0;
        }));
        command.Subcommands.Add(stop);
        return command;
    }

    private static void WaitGone(int pid)
    {
        for (int i = 0; i < 300 && Directory.Exists($"/proc/{pid}"); i++) Thread.Sleep(100);
        if (Directory.Exists($"/proc/{pid}")) throw new IOException($"daemon process {pid} is still running after 30 s");
    }

    public static Command CreateStatus()
    {
        var daemon = new DaemonFlags();
        var json = new Option<bool>("--json") { Description = "Print the daemon's JSON" };
        var command = new Command("status", "Show the daemon, its mounts and per-blob progress") { json };
        daemon.AddTo(command);
        command.SetAction(p => CliSupport.Run(() =>
        {
            using var client = new DaemonClient(daemon.Options(p).Socket);
            var status = client.Status();
            var mounts = client.List();
            if (p.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(mounts, DaemonJson.Default.ListMountStatus));
                return 0;
            }
            var console = AnsiConsole.Console;
            if (Console.IsOutputRedirected) console.Profile.Width = Math.Max(console.Profile.Width, 132);   // logs and pipes: no truncated table
            console.MarkupLine($"[bold]rafs daemon[/] pid {status.Pid} (supervisor {status.SupervisorPid}, {status.WorkerRestarts} restart(s)), up {TimeSpan.FromSeconds((int)status.UptimeSeconds)}");
            console.MarkupLine($"socket {Markup.Escape(status.Socket)}, cache {Markup.Escape(status.CacheDirectory)}");
            console.MarkupLine($"frontends (auto picks the first): {(status.Frontends.Count == 0 ? "none" : string.Join(", ", status.Frontends.Select(f => f.Name)))}");
            foreach (var f in status.Frontends)
                console.MarkupLine($"  {f.Name}: {f.Requests:N0} request(s), {f.Fills:N0} fill(s), {f.Errors:N0} answered EIO");
            foreach (var m in mounts)
            {
                console.WriteLine();
                console.MarkupLine($"[bold]{Markup.Escape(m.MountPoint)}[/] ← {Markup.Escape(m.Reference)} ({m.Frontend})");
                console.MarkupLine($"  manifest {Markup.Escape(m.Manifest)}");
                console.MarkupLine($"  fetched {CliSupport.Bytes(m.BackendBytes)} in {m.BackendRequests} request(s), {m.BackendRetries} retried");
                var table = new Table().Border(TableBorder.Simple);
                foreach (var column in new[] { "blob", "progress", "filled", "fetched", "state" }) table.AddColumn(new TableColumn(column).NoWrap());
                foreach (var b in m.Blobs)
                {
                    double fraction = b.DeviceSize == 0 ? 1 : Math.Min(1, (double)b.FilledBytes / b.DeviceSize);
                    if (b.Complete) fraction = 1;
                    table.AddRow(
                        Markup.Escape(b.Digest.Length > 19 ? b.Digest[7..19] : b.Digest),
                        Bar(fraction),
                        $"{CliSupport.Bytes(b.FilledBytes)} of {CliSupport.Bytes(b.DeviceSize)}",
                        CliSupport.Bytes(b.FetchedBytes),
                        b.Complete ? "[green]complete[/]" : b.Failures > 0 ? $"[red]{b.Failures} failed[/]" : "on demand");
                }
                console.Write(table);
            }
            if (mounts.Count == 0) console.MarkupLine("no mounts");
            return 0;
        }));
        return command;
    }

    private static string Bar(double fraction)
    {
        const int width = 20;
        int full = (int)Math.Round(fraction * width);
        return $"[green]{new string('█', full)}[/][grey]{new string('░', width - full)}[/] {fraction * 100,3:0}%";
    }
}
