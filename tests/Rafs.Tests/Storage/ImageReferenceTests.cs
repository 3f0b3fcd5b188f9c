using System.Text;
using Rafs.Storage.Remote;

namespace Rafs.Tests.Storage;

public sealed class ImageReferenceTests
{
    [Theory]
    [InlineData("127.0.0.1:5000/test/img:v1", "127.0.0.1:5000", "test/img", "v1", null)]
    [InlineData("registry.example/library/ubuntu", "registry.example", "library/ubuntu", "latest", null)]
    [InlineData("localhost:5000/a@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "localhost:5000", "a", null,
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")]
    public void RegistryReferences(string text, string host, string repo, string? tag, string? digest)
    {
        var r = ImageReference.Parse(text);
        Assert.Equal(ReferenceKind.Registry, r.Kind);
        Assert.Equal((host, repo, tag, digest), (r.Location, r.Repository, r.Tag, r.Digest));
    }

    [Fact]
    public void LoopbackRegistriesAndUrlsAndDirectories()
    {
        Assert.True(ImageReference.Parse("127.0.0.1:5000/x:y").IsLoopback);
        Assert.False(ImageReference.Parse("registry.example/x:y").IsLoopback);
        var http = ImageReference.Parse("http://127.0.0.1:8080/layout/#v2");
        Assert.Equal((ReferenceKind.Http, "http://127.0.0.1:8080/layout", "v2"), (http.Kind, http.Location, http.Tag));
        var dir = ImageReference.Parse("/var/tmp/some-layout:v3");
        Assert.Equal((ReferenceKind.Directory, "/var/tmp/some-layout", "v3"), (dir.Kind, dir.Location, dir.Tag));
    }

    [Fact]
    public void NonsenseIsAClearError()
    {
        var e = Assert.Throws<FormatException>(() => ImageReference.Parse("no spaces allowed here"));
        Assert.Contains("not an image reference", e.Message);
    }

    [Fact]
    public void AManifestWhoseLastLayerIsNotABootstrapIsNotARafsImage()
    {
        var json = Encoding.UTF8.GetBytes("""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
             "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2},
             "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":10}]}
            """);
        var oci = RafsManifest.ParseOci(json, "test");
        var e = Assert.Throws<InvalidDataException>(() => RafsManifest.FromOci(oci, default, "test"));
        Assert.Contains("not a Rafs image", e.Message);
    }

    [Fact]
    public void DescribedManifestsRoundTripAndIndexesSelectByTag()
    {
        var blob = new OciDescriptor { MediaType = RafsMediaTypes.Blob, Digest = "sha256:" + new string('a', 64), Size = 100 };
        var boot = new OciDescriptor { MediaType = RafsMediaTypes.Bootstrap, Digest = "sha256:" + new string('b', 64), Size = 8192 };
        var (manifest, _) = RafsManifest.Describe(boot, [blob]);
        var bytes = RafsManifest.Serialize(manifest);
        Assert.DoesNotContain("BlobDigest", Encoding.UTF8.GetString(bytes));
        var back = RafsManifest.FromOci(RafsManifest.ParseOci(bytes, "test"), default, "test");
        Assert.Equal(boot.Digest, back.Bootstrap.Digest);
        Assert.Equal(blob.Digest, Assert.Single(back.Blobs).Digest);

        var index = new OciManifest
        {
            MediaType = RafsMediaTypes.Index, Config = null, Layers = null,
            Manifests =
            [
                new OciDescriptor { Digest = "sha256:" + new string('c', 64), Annotations = new() { [RafsMediaTypes.AnnotationRefName] = "v1" } },
                new OciDescriptor { Digest = "sha256:" + new string('d', 64), Annotations = new() { [RafsMediaTypes.AnnotationRefName] = "v2" } },
            ],
        };
        Assert.Equal("sha256:" + new string('d', 64), OciIndex.Select(index, "v2", "test").Digest);
        Assert.Throws<InvalidDataException>(() => OciIndex.Select(index, "v9", "test"));
    }
}
