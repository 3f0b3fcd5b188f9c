using System.Security.Cryptography;

namespace Rafs.Storage;

/// <summary>A blob's identity: the sha256 of its stored bytes, as 64 lowercase hex digits (an OCI digest without "sha256:").</summary>
public readonly record struct BlobDigest
{
    public const int HexLength = 64;
    public string Hex { get; }

    private BlobDigest(string hex) => Hex = hex;

    public static BlobDigest FromHash(ReadOnlySpan<byte> sha256) => new(Convert.ToHexStringLower(sha256));

    /// <summary>The digest of bytes in memory (manifests, configs).</summary>
    public static BlobDigest Of(ReadOnlySpan<byte> data) => FromHash(System.Security.Cryptography.SHA256.HashData(data));

    public static bool TryParse(string text, out BlobDigest digest)
    {
        var hex = text.StartsWith("sha256:", StringComparison.Ordinal) ? text[7..] : text;
        digest = default;
        if (hex.Length != HexLength) return false;
        foreach (char c in hex)
            if (!char.IsAsciiHexDigitLower(c) && !char.IsAsciiDigit(c)) return false;
        digest = new BlobDigest(hex);
        return true;
    }

    public static BlobDigest Parse(string text) =>
        TryParse(text, out var d) ? d : throw new FormatException($"'{text}' is not a sha256 blob digest (64 lowercase hex digits)");

    /// <summary>Hashes a whole file with bounded memory.</summary>
    public static BlobDigest OfFile(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);
        return FromHash(SHA256.HashData(stream));
    }

    public override string ToString() => "sha256:" + Hex;
}

/// <summary>A local directory of blobs, each stored under its digest's hex name.</summary>
public sealed class BlobDirectory(string path)
{
    public string Path { get; } = System.IO.Path.GetFullPath(path);

    public string PathOf(BlobDigest digest) => System.IO.Path.Combine(Path, digest.Hex);

    public bool Contains(BlobDigest digest) => File.Exists(PathOf(digest));

    /// <summary>A temporary file inside the directory, so the final rename is atomic on the same filesystem.</summary>
    public string CreateTemporaryPath()
    {
        Directory.CreateDirectory(Path);
        return System.IO.Path.Combine(Path, $".tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
    }

    /// <summary>Moves a finished blob under its digest name; an existing blob with that name already holds the same bytes.</summary>
    public string Commit(string temporaryPath, BlobDigest digest)
    {
        var final = PathOf(digest);
        if (File.Exists(final)) File.Delete(temporaryPath);
        else File.Move(temporaryPath, final);
        return final;
    }

    /// <summary>Checks that the blob named <paramref name="digest"/> exists and hashes to it.</summary>
    public string Verify(BlobDigest digest)
    {
        var file = PathOf(digest);
        if (!File.Exists(file))
            throw new FileNotFoundException($"blob {digest} is missing from {Path}: copy it there or pass the right --blob-dir", file);
        var actual = BlobDigest.OfFile(file);
        if (actual != digest)
            throw new InvalidDataException($"blob {file} is corrupt: its sha256 is {actual.Hex}, the image expects {digest.Hex}; fetch it again");
        return file;
    }
}
