using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Rafs.Daemon;
using Rafs.Interop;

namespace Rafs.KernelTests;

public static class Ports
{
    public static int Free()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static void WaitTcp(int port, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var c = new TcpClient();
                c.Connect(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException) when (clock.Elapsed < timeout)
            {
                Thread.Sleep(100);
            }
        }
    }

    public static void WaitHttp(string url, TimeSpan timeout)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var r = http.GetAsync(url).GetAwaiter().GetResult();
                return;   // any HTTP answer (200, 401) means it is up
            }
            catch (Exception) when (clock.Elapsed < timeout)
            {
                Thread.Sleep(100);
            }
        }
    }
}

/// <summary>
/// Debian's docker-registry (the CNCF distribution registry) on 127.0.0.1 with filesystem storage in a scratch
/// directory. Can be stopped and started again on the same port and storage (fault tests).
/// </summary>
public sealed class RegistryServer : IDisposable
{
    public const string Binary = "/usr/bin/docker-registry";
    private readonly string _config;
    private readonly bool _tls;
    private Process? _process;

    public int Port { get; }
    public string Host => $"127.0.0.1:{Port}";
    public string StorageRoot { get; }

    /// <param name="tokenAuth">realm, service, issuer and the PEM bundle of the token signer, or null for open access.</param>
    public RegistryServer(Scratch scratch, string name = "registry", (string Realm, string Service, string Issuer, string CertBundle)? tokenAuth = null,
        (string Certificate, string Key)? tls = null)
    {
        if (!File.Exists(Binary)) throw new InvalidOperationException($"{Binary} is missing: run ./setup.sh (Debian package docker-registry)");
        Port = Ports.Free();
        var dir = scratch.Dir(name);
        StorageRoot = Path.Combine(dir, "data");
        var auth = tokenAuth is { } t
            ? $"auth:\n  token:\n    realm: {t.Realm}\n    service: {t.Service}\n    issuer: {t.Issuer}\n    rootcertbundle: {t.CertBundle}\n"
            : "";
        _config = Path.Combine(dir, "config.yml");
        File.WriteAllText(_config,
            $"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {StorageRoot}\n  delete:\n    enabled: true\n" +
            $"http:\n  addr: 127.0.0.1:{Port}\n" +
            (tls is { } t2 ? $"  tls:\n    certificate: {t2.Certificate}\n    key: {t2.Key}\n" : "") + auth);
        _tls = tls is not null;
        Start();
    }

    public void Start()
    {
        var psi = new ProcessStartInfo(Binary) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("serve");
        psi.ArgumentList.Add(_config);
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        if (_tls) Ports.WaitTcp(Port, TimeSpan.FromSeconds(20));
        else Ports.WaitHttp($"http://{Host}/v2/", TimeSpan.FromSeconds(20));
    }

    public void Stop()
    {
        if (_process is null) return;
        if (!_process.HasExited) _process.Kill();
        _process.WaitForExit();
        _process.Dispose();
        _process = null;
    }

    /// <summary>The registry's stored file for a blob digest.</summary>
    public string BlobDataPath(string digest)
    {
        var hex = digest["sha256:".Length..];
        return Path.Combine(StorageRoot, "docker", "registry", "v2", "blobs", "sha256", hex[..2], hex, "data");
    }

    public void Dispose() => Stop();
}

/// <summary>A Rafs daemon for one test: its own socket and state directory; stopped (or killed) on Dispose.</summary>
public sealed class DaemonSession : IDisposable
{
    public string Socket { get; }
    public string StateDir { get; }
    public DaemonClient Client { get; }

    public DaemonSession(Scratch scratch, string name = "daemon")
    {
        StateDir = scratch.Dir(name);
        Socket = Path.Combine(StateDir, "rafsd.sock");
        Client = new DaemonClient(Socket, TimeSpan.FromMinutes(2));
    }

    public string[] Flags => ["--socket", Socket, "--state-dir", StateDir];

    /// <summary>`rafs mount REF MNT` (starts the daemon when none answers), asserting success.</summary>
    public RunResult Mount(string reference, string mountPoint, params string[] extra) =>
        RafsCli.Ok(["mount", reference, mountPoint, .. Flags, .. extra]);

    public MountStatus Status(string mountPoint) => Client.List().Single(m => m.MountPoint == Path.GetFullPath(mountPoint));

    public string Log => File.Exists(Path.Combine(StateDir, "daemon.log")) ? File.ReadAllText(Path.Combine(StateDir, "daemon.log")) : "";

    public void Stop() => RafsCli.Ok(["daemon", "stop", .. Flags]);

    public void Dispose()
    {
        try
        {
            if (Client.IsRunning()) Stop();
        }
        catch (Exception)
        {
            // reported by the test itself; what matters here is that nothing is left running
        }
        foreach (var pid in DaemonPids()) Tools.Run("kill", "-9", pid.ToString());
        Client.Dispose();
    }

    /// <summary>Processes whose command line names this session's socket (supervisor and worker).</summary>
    public List<int> DaemonPids()
    {
        var pids = new List<int>();
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
            try
            {
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
                if (cmdline.Contains(" daemon ") && cmdline.Contains(Socket)) pids.Add(pid);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return pids;
    }
}

/// <summary>
/// A small Kestrel server on 127.0.0.1 for tests: serves a directory with Range support (a static HTTP origin),
/// issues registry bearer tokens (RS256 JWTs with an x5c header, as the distribution registry accepts), or
/// proxies to a registry while injecting 503s and connection resets.
/// </summary>
public sealed class TestHttpServer : IDisposable
{
    private readonly WebApplication _app;
    public int Port { get; }
    public string Url => $"http://127.0.0.1:{Port}";
    public long Requests => Interlocked.Read(ref _requests);
    public long Faults => Interlocked.Read(ref _faults);
    private long _requests, _faults;

    private TestHttpServer(Func<TestHttpServer, RequestDelegate> handler)
    {
        Port = Ports.Free();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, Port));
        _app = builder.Build();
        var inner = handler(this);
        _app.Run(context =>
        {
            Interlocked.Increment(ref _requests);
            return inner(context);
        });
        _app.Start();
    }

    /// <summary>Static files under <paramref name="root"/>, honouring Range.</summary>
    public static TestHttpServer Files(string root) => new(_ => async context =>
    {
        var rel = Uri.UnescapeDataString(context.Request.Path.Value ?? "/").TrimStart('/');
        var path = Path.GetFullPath(Path.Combine(root, rel));
        if (!path.StartsWith(Path.GetFullPath(root) + "/", StringComparison.Ordinal) || !File.Exists(path))
        {
            context.Response.StatusCode = 404;
            return;
        }
        await Results.File(path, "application/octet-stream", enableRangeProcessing: true).ExecuteAsync(context);
    });

    /// <summary>A token endpoint for registry auth: checks basic credentials, grants the scope asked for.</summary>
    public static TestHttpServer TokenIssuer(TokenSigner signer, string user, string password) => new(_ => async context =>
    {
        var expected = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}"));
        if (context.Request.Headers.Authorization.ToString() != expected)
        {
            context.Response.StatusCode = 401;
            return;
        }
        var service = context.Request.Query["service"].ToString();
        var access = new JsonArray();
        foreach (var scope in context.Request.Query["scope"])
        {
            var parts = scope!.Split(':');   // repository:NAME:ACTIONS
            if (parts.Length != 3) continue;
            access.Add((JsonNode)new JsonObject
            {
                ["type"] = parts[0], ["name"] = parts[1],
                ["actions"] = new JsonArray(parts[2].Split(',').Select(a => (JsonNode)a).ToArray()),
            });
        }
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(new JsonObject { ["token"] = signer.Issue(service, user, access), ["expires_in"] = 300 }.ToJsonString());
    });

    /// <summary>
    /// Forwards to <paramref name="upstream"/>; every <paramref name="every"/>-th request fails (503 or a reset; 0 = never),
    /// and every request waits <paramref name="delayMs"/> first (a slow network).
    /// </summary>
    public static TestHttpServer FaultyProxy(string upstream, int every, int delayMs = 0) => new(server =>
    {
        var http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false });
        return async context =>
        {
            long n = server.Requests;
            if (delayMs > 0) await Task.Delay(delayMs);
            if (every > 0 && n % every == 0)
            {
                Interlocked.Increment(ref server._faults);
                if (n / every % 2 == 0) { context.Response.StatusCode = 503; return; }
                context.Abort();   // connection reset
                return;
            }
            var request = new HttpRequestMessage(new HttpMethod(context.Request.Method), upstream + context.Request.Path + context.Request.QueryString);
            if (context.Request.Method is "POST" or "PUT" or "PATCH")
            {
                request.Content = new StreamContent(context.Request.Body);
                if (context.Request.ContentType is { } type) request.Content.Headers.TryAddWithoutValidation("Content-Type", type);
                if (context.Request.ContentLength is { } length) request.Content.Headers.ContentLength = length;
            }
            foreach (var h in context.Request.Headers)
                if (h.Key is not ("Host" or "Content-Type" or "Content-Length"))
                    request.Headers.TryAddWithoutValidation(h.Key, h.Value.ToArray());
            request.Headers.Host = null;
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            context.Response.StatusCode = (int)response.StatusCode;
            foreach (var h in response.Headers.Concat(response.Content.Headers))
                if (h.Key is not ("Transfer-Encoding" or "Connection"))
                    context.Response.Headers[h.Key] = h.Value.ToArray();
            await response.Content.CopyToAsync(context.Response.Body);
        };
    });

    public void Dispose() => _app.DisposeAsync().AsTask().GetAwaiter().GetResult();
}

/// <summary>Signs registry bearer tokens with a self-signed RSA certificate (the registry's rootcertbundle).</summary>
public sealed class TokenSigner : IDisposable
{
    private readonly RSA _key = RSA.Create(2048);
    private readonly X509Certificate2 _certificate;
    public string Issuer { get; } = "rafs-test-issuer";

    public TokenSigner(string bundlePath)
    {
        var request = new CertificateRequest("CN=rafs test token signer", _key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: false));
        _certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        File.WriteAllText(bundlePath, _certificate.ExportCertificatePem() + "\n");
    }

    private static string B64(byte[] b) => Convert.ToBase64String(b).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public string Issue(string audience, string subject, JsonArray access)
    {
        var header = new JsonObject { ["alg"] = "RS256", ["typ"] = "JWT", ["x5c"] = new JsonArray(Convert.ToBase64String(_certificate.RawData)) };
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var claims = new JsonObject
        {
            ["iss"] = Issuer, ["sub"] = subject, ["aud"] = audience, ["exp"] = now + 300, ["nbf"] = now - 10, ["iat"] = now,
            ["jti"] = Guid.NewGuid().ToString("N"), ["access"] = access,
        };
        var signingInput = B64(Encoding.UTF8.GetBytes(header.ToJsonString())) + "." + B64(Encoding.UTF8.GetBytes(claims.ToJsonString()));
        var signature = _key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return signingInput + "." + B64(signature);
    }

    public void Dispose()
    {
        _certificate.Dispose();
        _key.Dispose();
    }
}

/// <summary>A test CA and a server certificate for 127.0.0.1 it signed, as PEM files (for a TLS registry).</summary>
public static class TestCertificates
{
    public static (string CaFile, string Certificate, string Key) Create(string directory)
    {
        using var caKey = RSA.Create(2048);
        var caRequest = new CertificateRequest("CN=rafs test CA", caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        using var ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(2));
        using var serverKey = RSA.Create(2048);
        var request = new CertificateRequest("CN=127.0.0.1", serverKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var server = request.Create(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1), [1, 2, 3, 4]);
        var caFile = Path.Combine(directory, "ca.pem");
        var certFile = Path.Combine(directory, "server.pem");
        var keyFile = Path.Combine(directory, "server.key");
        File.WriteAllText(caFile, ca.ExportCertificatePem() + "\n");
        File.WriteAllText(certFile, server.ExportCertificatePem() + "\n");
        File.WriteAllText(keyFile, serverKey.ExportPkcs8PrivateKeyPem() + "\n");
        return (caFile, certFile, keyFile);
    }
}
