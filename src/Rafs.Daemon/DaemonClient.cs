using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Rafs.Daemon;

/// <summary>The daemon's HTTP API over its unix socket, for the CLI and tests.</summary>
public sealed class DaemonClient : IDisposable
{
    private readonly HttpClient _http;

    public string Socket { get; }

    public DaemonClient(string socket, TimeSpan? timeout = null)
    {
        Socket = Path.GetFullPath(socket);
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, token) =>
            {
                var s = new System.Net.Sockets.Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await s.ConnectAsync(new UnixDomainSocketEndPoint(Socket), token);
                    return new NetworkStream(s, ownsSocket: true);
                }
                catch
                {
                    s.Dispose();
                    throw;
                }
            },
        };
        _http = new HttpClient(handler) { BaseAddress = new Uri("http://rafsd/"), Timeout = timeout ?? TimeSpan.FromMinutes(10) };
    }

    private static readonly TimeSpan RestartGrace = TimeSpan.FromSeconds(10);

    /// <summary>True when a supervisor for this socket runs (its worker may be restarting): see <see cref="Supervisor.PidFile"/>.</summary>
    private bool Supervised() =>
        File.Exists(Supervisor.PidFile(Socket)) && int.TryParse(File.ReadAllText(Supervisor.PidFile(Socket)).Trim(), out int pid) &&
        Directory.Exists($"/proc/{pid}");

    /// <summary>True when something accepts connections on the socket (no HTTP involved).</summary>
    public bool Probe()
    {
        using var s = new System.Net.Sockets.Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            s.Connect(new UnixDomainSocketEndPoint(Socket));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>True when a daemon answers now (a restarting worker is not waited for).</summary>
    public bool IsRunning() => Probe();

    public DaemonStatus Status() => Get("api/v1/daemon", DaemonJson.Default.DaemonStatus);
    public List<MountStatus> List() => Get("api/v1/mounts", DaemonJson.Default.ListMountStatus);

    public MountStatus Mount(MountRequest request) =>
        Call(() => _http.PostAsJsonAsync("api/v1/mounts", request, DaemonJson.Default.MountRequest), DaemonJson.Default.MountStatus);

    public void Unmount(string mountPoint) =>
        Call(() => _http.DeleteAsync("api/v1/mounts?mountpoint=" + Uri.EscapeDataString(Path.GetFullPath(mountPoint))), DaemonJson.Default.ErrorResponse, expectBody: false);

    public void Shutdown() => Call(() => _http.PostAsync("api/v1/daemon/shutdown", null), DaemonJson.Default.DaemonStatus);

    public string Metrics() => Send(() => _http.GetAsync("metrics"), r => r.Content.ReadAsStringAsync().GetAwaiter().GetResult());

    private T Get<T>(string path, JsonTypeInfo<T> type) => Call(() => _http.GetAsync(path), type);

    private T Call<T>(Func<Task<HttpResponseMessage>> send, JsonTypeInfo<T> type, bool expectBody = true) =>
        Send(send, r => expectBody ? r.Content.ReadFromJsonAsync(type).GetAwaiter().GetResult()! : default!);

    private T Send<T>(Func<Task<HttpResponseMessage>> send, Func<HttpResponseMessage, T> read)
    {
        HttpResponseMessage response;
        var clock = Stopwatch.StartNew();
        while (true)
        {
            // A supervisor restarting its worker: wait a little for the new one to listen.
            while (!Probe() && clock.Elapsed < RestartGrace && Supervised()) Thread.Sleep(100);
            try
            {
                response = send().GetAwaiter().GetResult();
                break;
            }
            catch (HttpRequestException e) when (e.InnerException is SocketException or IOException ||
                                                 e.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.ResponseEnded)
            {
                if (clock.Elapsed < RestartGrace && Supervised())
                {
                    Thread.Sleep(100);
                    continue;
                }
                throw new DaemonUnavailableException(File.Exists(Socket)
                    ? $"no Rafs daemon answers on {Socket} ({e.InnerException?.Message ?? e.Message}); start one with 'rafs daemon'"
                    : $"no Rafs daemon is running (no socket at {Socket}); start one with 'rafs daemon', or pass --socket");
            }
        }
        using (response)
        {
            if (response.IsSuccessStatusCode) return read(response);
            string message;
            try
            {
                message = response.Content.ReadFromJsonAsync(DaemonJson.Default.ErrorResponse).GetAwaiter().GetResult()?.Error ?? "";
            }
            catch (JsonException)
            {
                message = "";
            }
            throw new DaemonException((int)response.StatusCode, message.Length > 0 ? message : $"daemon answered {(int)response.StatusCode}");
        }
    }

    /// <summary>
    /// Connects to the daemon on <paramref name="options"/>' socket, starting one in the background (detached, in
    /// its own session, logging to daemon.log in the state directory) when none answers.
    /// </summary>
    public static DaemonClient Connect(DaemonOptions options, bool start, Action<string>? log = null)
    {
        var client = new DaemonClient(options.Socket);
        if (!start || client.IsRunning()) return client;
        Directory.CreateDirectory(options.StateDirectory);
        var logFile = Path.Combine(options.StateDirectory, "daemon.log");
        log?.Invoke($"starting the Rafs daemon (socket {options.Socket}, log {logFile})");
        // A shell sets up the detached session: new session (setsid -f), stdio off the caller's terminal or pipes,
        // so a caller that waits for its child's output is never held open by the daemon.
        var launch = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        launch.ArgumentList.Add("-c");
        launch.ArgumentList.Add("exec setsid -f \"$0\" \"$@\" </dev/null >>\"$RAFS_DAEMON_LOG\" 2>&1");
        launch.ArgumentList.Add(SelfLauncher.Executable);
        foreach (var a in SelfLauncher.DaemonCommand(options)) launch.ArgumentList.Add(a);
        launch.Environment["RAFS_DAEMON_LOG"] = logFile;
        using (var shell = Process.Start(launch) ?? throw new IOException("could not start /bin/sh to launch the daemon"))
            shell.WaitForExit();
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(20))
        {
            if (client.IsRunning()) return client;
            Thread.Sleep(100);
        }
        throw new DaemonUnavailableException($"the daemon did not come up on {options.Socket} within 20 s; see {logFile}");
    }

    public void Dispose() => _http.Dispose();
}

public class DaemonException(int status, string message) : IOException(message)
{
    public int Status { get; } = status;
}

public sealed class DaemonUnavailableException(string message) : DaemonException(0, message);
