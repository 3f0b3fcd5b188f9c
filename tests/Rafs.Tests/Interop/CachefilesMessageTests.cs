using System.Buffers.Binary;
using System.Text;
using Rafs.Interop;

namespace Rafs.Tests.Interop;

/// <summary>
/// Messages from /dev/cachefiles, laid out as include/uapi/linux/cachefiles.h says. The real kernel's messages are
/// exercised by the fscache VM test; these cover what it never sends: truncated and lying messages.
/// </summary>
public sealed class CachefilesMessageTests
{
    private static byte[] Message(uint id, uint opcode, uint objectId, byte[] payload, uint? claimedLength = null)
    {
        var m = new byte[16 + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(m, id);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(4), opcode);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(8), claimedLength ?? (uint)m.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(12), objectId);
        payload.CopyTo(m, 16);
        return m;
    }

    private static byte[] OpenPayload(string volume, string cookie, int fd, uint? volumeSize = null, uint? cookieSize = null)
    {
        var v = Encoding.ASCII.GetBytes(volume + "\0");
        var c = Encoding.ASCII.GetBytes(cookie);
        var p = new byte[16 + v.Length + c.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(p, volumeSize ?? (uint)v.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(p.AsSpan(4), cookieSize ?? (uint)c.Length);
        BinaryPrimitives.WriteInt32LittleEndian(p.AsSpan(8), fd);
        v.CopyTo(p, 16);
        c.CopyTo(p, 16 + v.Length);
        return p;
    }

    [Fact]
    public void OpenReadAndCloseParse()
    {
        var open = CachefilesMessage.Parse(Message(7, 0, 3, OpenPayload("erofs,rafs", "rafs-abc", 42)), out var error);
        Assert.Null(error);
        Assert.Equal(CachefilesOpcode.Open, open!.Value.Opcode);
        Assert.Equal((7u, 3u, 42), (open.Value.MessageId, open.Value.ObjectId, open.Value.Fd));
        Assert.Equal("erofs,rafs", open.Value.VolumeKey);
        Assert.Equal("rafs-abc", Encoding.ASCII.GetString(open.Value.CookieKey));

        var payload = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(payload, 1 << 20);
        BinaryPrimitives.WriteUInt64LittleEndian(payload.AsSpan(8), 131072);
        var read = CachefilesMessage.Parse(Message(8, 2, 3, payload), out error)!.Value;
        Assert.Equal((CachefilesOpcode.Read, 1ul << 20, 131072ul), (read.Opcode, read.Offset, read.Length));

        Assert.Equal(CachefilesOpcode.Close, CachefilesMessage.Parse(Message(9, 1, 3, []), out error)!.Value.Opcode);
    }

    [Theory]
    [InlineData("short header")]
    [InlineData("length beyond the bytes read")]
    [InlineData("length below the header")]
    [InlineData("unknown opcode")]
    [InlineData("open keys overrun")]
    [InlineData("open payload truncated")]
    [InlineData("read payload truncated")]
    [InlineData("read range overflows")]
    public void MalformedMessagesAreRefusedWithAReason(string what)
    {
        var readRange = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(readRange, ulong.MaxValue - 10);
        BinaryPrimitives.WriteUInt64LittleEndian(readRange.AsSpan(8), 4096);
        byte[] bytes = what switch
        {
            "short header" => new byte[10],
            "length beyond the bytes read" => Message(1, 1, 1, [], claimedLength: 64),
            "length below the header" => Message(1, 1, 1, [], claimedLength: 8),
            "unknown opcode" => Message(1, 99, 1, []),
            "open keys overrun" => Message(1, 0, 1, OpenPayload("erofs,rafs", "k", 5, cookieSize: 500)),
            "open payload truncated" => Message(1, 0, 1, new byte[8]),
            "read payload truncated" => Message(1, 2, 1, new byte[12]),
            "read range overflows" => Message(1, 2, 1, readRange),
            _ => throw new ArgumentException(what),
        };
        Assert.Null(CachefilesMessage.Parse(bytes, out var error));
        Assert.False(string.IsNullOrEmpty(error));
    }
}
