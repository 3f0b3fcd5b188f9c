using System.Text.RegularExpressions;

namespace Rafs.Storage.Remote;

public enum ReferenceKind { Registry, Http, Directory }

/// <summary>
/// Where an image lives: an OCI reference (<c>host[:port]/repo[:tag|@sha256:…]</c>), an HTTP(S) base URL of an
/// OCI image layout (<c>URL[#tag]</c>), or a local OCI image layout directory (<c>DIR[:TAG]</c>).
/// </summary>
public sealed partial record ImageReference(ReferenceKind Kind, string Location, string? Repository, string? Tag, string? Digest)
{
    public static ImageReference Parse(string text)
    {
        if (text.StartsWith("http://", StringComparison.Ordinal) || text.StartsWith("https://", StringComparison.Ordinal))
        {
            int hash = text.IndexOf('#');
            var url = hash < 0 ? text : text[..hash];
            return new ImageReference(ReferenceKind.Http, url.TrimEnd('/'), null, hash < 0 ? null : text[(hash + 1)..], null);
        }
        if (text.StartsWith('/') || text.StartsWith("./", StringComparison.Ordinal) || text.StartsWith("../", StringComparison.Ordinal) || Directory.Exists(text))
        {
            var (dir, tag) = SplitLayoutTag(text);
            return new ImageReference(ReferenceKind.Directory, Path.GetFullPath(dir), null, tag, null);
        }
        var m = OciReference().Match(text);
        if (!m.Success)
            throw new FormatException($"'{text}' is not an image reference: use host[:port]/repo[:tag|@sha256:…], an http(s):// URL or a directory");
        return new ImageReference(ReferenceKind.Registry, m.Groups["host"].Value, m.Groups["repo"].Value,
            m.Groups["tag"].Success ? m.Groups["tag"].Value : m.Groups["digest"].Success ? null : "latest",
            m.Groups["digest"].Success ? m.Groups["digest"].Value : null);
    }

    /// <summary>DIR:TAG, where a colon that is part of an existing directory's name is not a tag separator.</summary>
    private static (string Dir, string? Tag) SplitLayoutTag(string text)
    {
        int colon = text.LastIndexOf(':');
        if (colon > 0 && !Directory.Exists(text) && text.IndexOf('/', colon) < 0) return (text[..colon], text[(colon + 1)..]);
        return (text, null);
    }

    /// <summary>The tag or digest a registry's manifests endpoint takes.</summary>
    public string ManifestReference => Digest ?? Tag ?? "latest";

    public bool IsLoopback => Kind == ReferenceKind.Registry && IsLoopbackHost(Location);

    public static bool IsLoopbackHost(string host) =>
        host.StartsWith("localhost", StringComparison.OrdinalIgnoreCase) || host.StartsWith("127.", StringComparison.Ordinal) ||
        host.StartsWith("[::1]", StringComparison.Ordinal);

    public override string ToString() => Kind switch
    {
        ReferenceKind.Registry => $"{Location}/{Repository}" + (Digest is not null ? "@" + Digest : ":" + Tag),
        ReferenceKind.Http => Location + (Tag is null ? "" : "#" + Tag),
        _ => Location + (Tag is null ? "" : ":" + Tag),
    };

    // host must look like a host (has '.' or ':' or is localhost), as the distribution reference grammar does.
    [GeneratedRegex(@"^(?<host>(?:localhost|[A-Za-z0-9.-]+\.[A-Za-z0-9-]+|[A-Za-z0-9.-]+:[0-9]+|\[[0-9a-fA-F:]+\](?::[0-9]+)?)(?::[0-9]+)?)/(?<repo>[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*)(?::(?<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?<digest>sha256:[0-9a-f]{64}))?$")]
    private static partial Regex OciReference();
}

/// <summary>Network behaviour of the remote backends. Defaults suit a container host; tests shorten the timeouts.</summary>
public sealed record RemoteOptions
{
    /// <summary>One attempt's limit (connect + response headers + body of one range).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(20);
    /// <summary>Retries after the first attempt, for 5xx, 429, resets and timeouts.</summary>
    public int Retries { get; init; } = 3;
    /// <summary>First backoff delay; doubles each retry, with jitter.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromMilliseconds(200);
    /// <summary>Requests in flight at once per backend.</summary>
    public int MaxConcurrentRequests { get; init; } = 8;
    /// <summary>PEM file of extra CA certificates trusted for HTTPS.</summary>
    public string? CaFile { get; init; }
    /// <summary>Talk plain HTTP to registries (always so for loopback hosts).</summary>
    public bool PlainHttp { get; init; }
    /// <summary>Mirror base URLs (e.g. http://127.0.0.1:5001) tried in order before the registry itself.</summary>
    public IReadOnlyList<string> Mirrors { get; init; } = [];
    /// <summary>docker config.json with credentials; null = $DOCKER_CONFIG or ~/.docker/config.json.</summary>
    public string? DockerConfigPath { get; init; }
    /// <summary>Explicit user:password, taking precedence over the docker config.</summary>
    public string? Credentials { get; init; }
}
