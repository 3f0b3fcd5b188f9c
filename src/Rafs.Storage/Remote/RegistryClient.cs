using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Rafs.Storage.Remote;

/// <summary>
/// The OCI Distribution API for one repository: manifests and blobs (with Range), bearer tokens obtained from the
/// realm a 401's WWW-Authenticate names, basic auth, credentials from a docker config, and mirrors tried before the
/// registry itself. Uploads are monolithic (POST then PUT with the digest).
/// </summary>
public sealed partial class RegistryClient : IDisposable
{
    private readonly HttpTransport _http;
    private readonly ImageReference _reference;
    private readonly RemoteOptions _options;
    private readonly List<Uri> _endpoints = [];
    private readonly Dictionary<string, AuthenticationHeaderValue> _authorization = [];
    private readonly (string User, string Password)? _credentials;

    public RegistryClient(ImageReference reference, RemoteOptions options, HttpTransport transport)
    {
        if (reference.Kind != ReferenceKind.Registry) throw new ArgumentException($"{reference} is not a registry reference");
        _reference = reference;
        _options = options;
        _http = transport;
        // Plain HTTP for loopback registries (as docker does) unless a CA is given, which asks for TLS.
        bool plain = options.PlainHttp || (reference.IsLoopback && options.CaFile is null);
        foreach (var mirror in options.Mirrors)
        {
            var m = mirror.TrimEnd('/');
            if (!m.Contains("://", StringComparison.Ordinal))
                m = (plain || ImageReference.IsLoopbackHost(m) && options.CaFile is null ? "http://" : "https://") + m;
            _endpoints.Add(new Uri(m + "/"));
        }
        _endpoints.Add(new Uri($"{(plain ? "http" : "https")}://{reference.Location}/"));
        if (options.Credentials is { } given)
        {
            int colon = given.IndexOf(':');
            if (colon <= 0) throw new ArgumentException("credentials must be USER:PASSWORD");
            _credentials = (given[..colon], given[(colon + 1)..]);
        }
        else _credentials = DockerCredentials.Find(options.DockerConfigPath, reference.Location);
    }

    public string Repository => _reference.Repository!;
    public HttpTransport Transport => _http;

    private string BlobPath(BlobDigest digest) => $"v2/{Repository}/blobs/sha256:{digest.Hex}";

    /// <summary>
    /// Sends to each endpoint in turn (mirrors first); a mirror that fails or lacks the object passes to the next.
    /// A 401 is answered once per endpoint by authenticating as the challenge asks.
    /// </summary>
    private HttpResponseMessage Send(Func<Uri, HttpRequestMessage> build, string what, bool push = false)
    {
        Exception? lastError = null;
        for (int i = 0; i < _endpoints.Count; i++)
        {
            var endpoint = _endpoints[i];
            bool isMirror = i < _endpoints.Count - 1;
            try
            {
                for (int attempt = 0; ; attempt++)
                {
                    var response = _http.Send(() =>
                    {
                        var request = build(endpoint);
                        lock (_authorization)
                            if (_authorization.TryGetValue(endpoint.Authority, out var auth)) request.Headers.Authorization = auth;
                        return request;
                    }, $"{what} from {endpoint.Authority}");
                    if (response.StatusCode == HttpStatusCode.Unauthorized && attempt == 0)
                    {
                        var challenge = response.Headers.WwwAuthenticate.FirstOrDefault();
                        response.Dispose();
                        Authenticate(endpoint, challenge, push, what);
                        continue;
                    }
                    if (isMirror && (response.StatusCode == HttpStatusCode.NotFound || (int)response.StatusCode >= 500))
                    {
                        lastError = new IOException($"{what}: mirror {endpoint.Authority} answered {(int)response.StatusCode}");
                        response.Dispose();
                        break;
                    }
                    return response;
                }
            }
            catch (IOException e) when (isMirror)
            {
                lastError = e;
            }
        }
        throw lastError as IOException ?? new IOException($"{what}: no endpoint answered", lastError);
    }

    private void Authenticate(Uri endpoint, AuthenticationHeaderValue? challenge, bool push, string what)
    {
        if (challenge is null)
            throw new UnauthorizedAccessException($"{what}: {endpoint.Authority} refused access (401) without a challenge");
        AuthenticationHeaderValue value;
        if (challenge.Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase))
        {
            value = BasicAuthorization() ?? throw new UnauthorizedAccessException(
                $"{what}: {endpoint.Authority} needs a user name and password: add them to {DockerCredentials.DefaultPath} (docker login) or pass --credentials");
        }
        else if (challenge.Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase))
        {
            var parameters = ChallengeParameter().Matches(challenge.Parameter ?? "")
                .ToDictionary(m => m.Groups[1].Value.ToLowerInvariant(), m => m.Groups[2].Value);
            if (!parameters.TryGetValue("realm", out var realm))
                throw new UnauthorizedAccessException($"{what}: {endpoint.Authority}'s bearer challenge names no realm");
            var scope = parameters.TryGetValue("scope", out var s) ? s : $"repository:{Repository}:pull" + (push ? ",push" : "");
            if (push && !scope.Contains("push", StringComparison.Ordinal)) scope = $"repository:{Repository}:pull,push";
            var query = new StringBuilder(realm).Append(realm.Contains('?') ? '&' : '?');
            if (parameters.TryGetValue("service", out var service)) query.Append("service=").Append(Uri.EscapeDataString(service)).Append('&');
            query.Append("scope=").Append(Uri.EscapeDataString(scope));
            using var response = _http.Send(() =>
            {
                var request = new HttpRequestMessage(HttpMethod.Get, query.ToString());
                if (BasicAuthorization() is { } basic) request.Headers.Authorization = basic;
                return request;
            }, $"token for {scope} from {realm}");
            if (!response.IsSuccessStatusCode)
                throw new UnauthorizedAccessException($"{what}: the token service {realm} refused {scope} ({(int)response.StatusCode}); check the credentials");
            var body = _http.ReadSmallBody(response, 1 << 20, $"token from {realm}");
            TokenResponse? token;
            try { token = JsonSerializer.Deserialize(body, RemoteJson.Default.TokenResponse); }
            catch (JsonException e) { throw new InvalidDataException($"token from {realm} is not JSON ({e.Message})"); }
            var text = token?.Token ?? token?.AccessToken
                       ?? throw new InvalidDataException($"token service {realm} answered without a token");
            value = new AuthenticationHeaderValue("Bearer", text);
        }
        else throw new NotSupportedException($"{what}: {endpoint.Authority} asks for {challenge.Scheme} authentication, which Rafs does not speak");
        lock (_authorization) _authorization[endpoint.Authority] = value;
    }

    private AuthenticationHeaderValue? BasicAuthorization() => _credentials is { } c
        ? new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{c.User}:{c.Password}")))
        : null;

    /// <summary>Fetches the manifest, checks its digest (against the reference's digest when it has one).</summary>
    public RafsManifest GetManifest()
    {
        var what = $"manifest {_reference}";
        using var response = Send(e =>
        {
            var r = new HttpRequestMessage(HttpMethod.Get, new Uri(e, $"v2/{Repository}/manifests/{_reference.ManifestReference}"));
            r.Headers.Accept.ParseAdd(RafsMediaTypes.Manifest);
            r.Headers.Accept.ParseAdd(RafsMediaTypes.Index);
            return r;
        }, what);
        if (response.StatusCode == HttpStatusCode.NotFound) throw new FileNotFoundException($"{what}: not found on the registry (push it with 'rafs push')");
        Ensure(response, what);
        var body = _http.ReadSmallBody(response, RafsManifest.MaxManifestBytes, what);
        return RafsManifest.FromBytes(body, _reference.Digest is { } expected ? BlobDigest.Parse(expected) : null, what);
    }

    public long GetBlobLength(BlobDigest digest)
    {
        using var response = Send(e => new HttpRequestMessage(HttpMethod.Head, new Uri(e, BlobPath(digest))), $"blob {digest}");
        if (response.StatusCode == HttpStatusCode.NotFound) throw new FileNotFoundException($"blob {digest} is not in {_reference.Location}/{Repository}");
        Ensure(response, $"blob {digest}");
        return response.Content.Headers.ContentLength ?? throw new InvalidDataException($"blob {digest}: the registry sent no length");
    }

    public void ReadBlob(BlobDigest digest, long offset, Span<byte> buffer)
    {
        var what = $"blob {digest} bytes {offset}+{buffer.Length}";
        var path = BlobPath(digest);
        _http.GetRange((o, c) => Send(e => HttpTransport.WithRange(new HttpRequestMessage(HttpMethod.Get, new Uri(e, path)), o, c), what),
            offset, buffer, what);
    }

    public bool HasBlob(BlobDigest digest)
    {
        using var response = Send(e => new HttpRequestMessage(HttpMethod.Head, new Uri(e, BlobPath(digest))), $"blob {digest}", push: true);
        if (response.StatusCode == HttpStatusCode.NotFound) return false;
        Ensure(response, $"blob {digest}");
        return true;
    }

    /// <summary>Monolithic upload: POST for an upload URL, then PUT the whole file with its digest.</summary>
    public void UploadBlob(BlobDigest digest, string path)
    {
        var what = $"upload of {path}";
        string location;
        using (var start = Send(e => new HttpRequestMessage(HttpMethod.Post, new Uri(e, $"v2/{Repository}/blobs/uploads/")), what, push: true))
        {
            Ensure(start, what);
            location = start.Headers.Location?.ToString() ?? throw new InvalidDataException($"{what}: the registry gave no upload location");
        }
        using var put = Send(e =>
        {
            var target = new Uri(new Uri(e, $"v2/{Repository}/blobs/uploads/"), location);
            var url = target + (target.Query.Length > 0 ? "&" : "?") + "digest=sha256%3A" + digest.Hex;
            var content = new StreamContent(File.OpenRead(path));
            content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            return new HttpRequestMessage(HttpMethod.Put, url) { Content = content };
        }, what, push: true);
        Ensure(put, what);
    }

    public void PutManifest(string tagOrDigest, byte[] manifest)
    {
        var what = $"manifest {_reference.Location}/{Repository}:{tagOrDigest}";
        using var response = Send(e =>
        {
            var content = new ByteArrayContent(manifest);
            content.Headers.ContentType = new MediaTypeHeaderValue(RafsMediaTypes.Manifest);
            return new HttpRequestMessage(HttpMethod.Put, new Uri(e, $"v2/{Repository}/manifests/{tagOrDigest}")) { Content = content };
        }, what, push: true);
        Ensure(response, what);
    }

    private void Ensure(HttpResponseMessage response, string what)
    {
        if (response.IsSuccessStatusCode) return;
        string detail = "";
        try { detail = Encoding.UTF8.GetString(_http.ReadSmallBody(response, 8192, what)).Trim(); }
        catch (Exception e) when (e is IOException or InvalidDataException or HttpRequestException) { }
        if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
            throw new UnauthorizedAccessException($"{what}: access denied ({(int)response.StatusCode}); check the credentials {detail}");
        throw new IOException($"{what}: the registry answered {(int)response.StatusCode} {response.ReasonPhrase} {detail}".TrimEnd());
    }

    [GeneratedRegex("([A-Za-z_]+)=\"([^\"]*)\"")]
    private static partial Regex ChallengeParameter();

    public void Dispose() { }
}

internal static class RangeReader
{
    /// <summary>A range answer must be 206 for exactly the range asked, or 200 when the range is the whole body.</summary>
    public static void Accept(HttpResponseMessage response, long offset, int count, string what)
    {
        if (response.StatusCode == HttpStatusCode.PartialContent)
        {
            var range = response.Content.Headers.ContentRange;
            if (range is null || range.From != offset || range.To != offset + count - 1)
                throw new InvalidDataException($"{what}: the server sent range {range}, not the one asked for");
            return;
        }
        if (response.StatusCode == HttpStatusCode.OK && offset == 0 && response.Content.Headers.ContentLength == count) return;
        if (response.StatusCode == HttpStatusCode.OK)
            throw new NotSupportedException($"{what}: the server ignores Range requests; serve the blobs from a server that supports them");
        if (response.StatusCode == HttpStatusCode.NotFound) throw new FileNotFoundException($"{what}: not found (404)");
        throw new IOException($"{what}: the server answered {(int)response.StatusCode} {response.ReasonPhrase}");
    }
}
