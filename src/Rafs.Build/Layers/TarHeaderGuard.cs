namespace Rafs.Build.Layers;

/// <summary>
/// Sits between a layer stream and TarReader and follows the tar framing (512-byte header, data rounded up to 512)
/// to refuse metadata entries (PAX 'x'/'g', GNU long names 'L'/'K') larger than <see cref="MaxMetadataSize"/>.
/// TarReader would otherwise allocate whatever size a hostile header claims.
/// </summary>
internal sealed class TarHeaderGuard(Stream inner) : Stream
{
    public const int MaxMetadataSize = 1 << 20;
    private const int Block = 512;

    private readonly byte[] _header = new byte[Block];
    private int _headerServed = Block;   // bytes of _header already handed out (Block = none pending)
    private long _dataLeft;              // bytes of the current entry's padded data still to pass through

    public override int Read(Span<byte> buffer)
    {
        if (buffer.IsEmpty) return 0;
        if (_headerServed < Block)
        {
            int n = Math.Min(buffer.Length, Block - _headerServed);
            _header.AsSpan(_headerServed, n).CopyTo(buffer);
            _headerServed += n;
            return n;
        }
        if (_dataLeft > 0)
        {
            int n = inner.Read(buffer[..(int)Math.Min(buffer.Length, _dataLeft)]);
            _dataLeft -= n;
            return n;
        }
        int got = inner.ReadAtLeast(_header, Block, throwOnEndOfStream: false);
        if (got == 0) return 0;
        if (got < Block) throw new EndOfStreamException("tar header cut short");
        _headerServed = 0;
        _dataLeft = PaddedSize(_header);
        return Read(buffer);
    }

    private static long PaddedSize(ReadOnlySpan<byte> header)
    {
        if (!header.ContainsAnyExcept((byte)0)) return 0;   // end-of-archive block
        long size = ParseSize(header.Slice(124, 12));
        char type = (char)header[156];
        if (type is 'x' or 'g' or 'L' or 'K' && size > MaxMetadataSize)
            throw new InvalidDataException($"a '{type}' metadata header claims {size} bytes (limit {MaxMetadataSize}); the layer is hostile or damaged");
        if (size < 0) throw new InvalidDataException("negative entry size in a tar header");
        // Hard links, symlinks, directories, devices and fifos carry no data whatever their size field says.
        if (type is '1' or '2' or '3' or '4' or '5' or '6') return 0;
        return (size + Block - 1) / Block * Block;
    }

    /// <summary>Octal ASCII, or GNU base-256 when the top bit of the first byte is set.</summary>
    private static long ParseSize(ReadOnlySpan<byte> field)
    {
        if ((field[0] & 0x80) != 0)
        {
            long value = field[0] & 0x3F;
            foreach (byte b in field[1..])
            {
                if (value > (long.MaxValue >> 8)) throw new InvalidDataException("tar size field overflows");
                value = (value << 8) | b;
            }
            return value;
        }
        long result = 0;
        foreach (byte b in field)
        {
            if (b is 0 or (byte)' ') { if (result > 0) break; continue; }
            if (b is < (byte)'0' or > (byte)'7') throw new InvalidDataException("tar size field is not octal");
            result = checked(result * 8 + (b - '0'));
        }
        return result;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }
}
