using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Polly;
using Polly.Retry;

namespace Rafs.Storage.Remote;

/// <summary>Counters every backend keeps, for laziness checks, status and metrics.</summary>
public interface IBackendCounters
{
    long Requests { get; }
    long BytesRead { get; }
    long Retries { get; }
}

/// <summary>
/// One HttpClient for a backend: custom CA, per-attempt timeout, retries with exponential backoff and jitter for
/// transient failures (5xx, 429, resets, timeouts), a bound on requests in flight, and byte counters. Synchronous on
/// purpose: callers are kernel-event handler threads that must answer the event they hold.
/// </summary>
public sealed class HttpTransport : IBackendCounters, IDisposable
{
    private readonly HttpClient _client;
    private readonly SemaphoreSlim _slots;
    private readonly ResiliencePipeline<HttpResponseMessage> _retry;
    private readonly RemoteOptions _options;
    private long _requests, _bytes, _retries;

    public HttpTransport(RemoteOptions options)
    {
        _options = options;
        var handler = new SocketsHttpHandler
        {
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
            ConnectTimeout = options.RequestTimeout,
            MaxConnectionsPerServer = Math.Max(1, options.MaxConcurrentRequests),
            AutomaticDecompression = DecompressionMethods.None,
        };
        if (options.CaFile is { } caFile) handler.SslOptions = TrustingCa(caFile);
        _client = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        _client.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("rafs", "1"));
        _slots = new SemaphoreSlim(Math.Max(1, options.MaxConcurrentRequests));
        _retry = new ResiliencePipelineBuilder<HttpResponseMessage>()
            .AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                MaxRetryAttempts = Math.Max(0, options.Retries),
                Delay = options.RetryDelay,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                ShouldHandle = new PredicateBuilder<HttpResponseMessage>()
                    .Handle<HttpRequestException>()
                    .Handle<IOException>()
                    .Handle<OperationCanceledException>()
                    .HandleResult(r => (int)r.StatusCode >= 500 || r.StatusCode == HttpStatusCode.TooManyRequests),
                OnRetry = args =>
                {
                    Interlocked.Increment(ref _retries);
                    args.Outcome.Result?.Dispose();
                    return default;
                },
            })
            .Build();
    }

    public long Requests => Interlocked.Read(ref _requests);
    public long BytesRead => Interlocked.Read(ref _bytes);
    public long Retries => Interlocked.Read(ref _retries);

    private static SslClientAuthenticationOptions TrustingCa(string caFile)
    {
        var roots = new X509Certificate2Collection();
        roots.ImportFromPemFile(caFile);
        if (roots.Count == 0) throw new InvalidDataException($"{caFile}: no PEM certificates found; pass a CA bundle to --ca-file");
        return new SslClientAuthenticationOptions
        {
            RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            {
                if (errors == SslPolicyErrors.None) return true;
                if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != 0) return false;
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.AddRange(roots);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                return chain.Build(new X509Certificate2(certificate));
            },
        };
    }

    /// <summary>
    /// Sends a request built afresh for each attempt, retrying transient failures; the caller owns the response.
    /// Non-transient statuses (4xx) come back as they are, for the caller to interpret.
    /// </summary>
    public HttpResponseMessage Send(Func<HttpRequestMessage> build, string what)
    {
        _slots.Wait();
        try
        {
            var outcome = _retry.ExecuteOutcomeAsync((context, _) =>
            {
                using var cts = new CancellationTokenSource(_options.RequestTimeout);
                try
                {
                    Interlocked.Increment(ref _requests);
                    var response = _client.Send(build(), HttpCompletionOption.ResponseHeadersRead, cts.Token);
                    return ValueTask.FromResult(Outcome.FromResult(response));
                }
                catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException)
                {
                    return ValueTask.FromResult(Outcome.FromException<HttpResponseMessage>(e));
                }
            }, ResilienceContextPool.Shared.Get(), 0).AsTask().GetAwaiter().GetResult();
            if (outcome.Exception is { } error)
                throw new IOException($"{what}: {Describe(error)} (after {_options.Retries + 1} attempts)", error);
            return outcome.Result!;
        }
        finally
        {
            _slots.Release();
        }
    }

    /// <summary>Reads exactly buffer.Length bytes of a response body within the attempt timeout.</summary>
    public void ReadBody(HttpResponseMessage response, Span<byte> buffer, string what)
    {
        using var cts = new CancellationTokenSource(_options.RequestTimeout);
        using var registration = cts.Token.Register(response.Dispose);
        try
        {
            using var body = response.Content.ReadAsStream(cts.Token);
            int done = 0;
            while (done < buffer.Length)
            {
                int n = body.Read(buffer[done..]);
                if (n == 0) throw new BrokenBodyException($"{what}: the server sent {done} of {buffer.Length} bytes");
                done += n;
                Interlocked.Add(ref _bytes, n);
            }
        }
        catch (ObjectDisposedException) when (cts.IsCancellationRequested)
        {
            throw new BrokenBodyException($"{what}: no data within {_options.RequestTimeout.TotalSeconds:0.#} s");
        }
        catch (Exception e) when (e is HttpRequestException || (e is IOException && e is not BrokenBodyException))
        {
            throw new BrokenBodyException($"{what}: the transfer broke off ({e.Message})");
        }
    }

    /// <summary>
    /// A ranged GET whose whole exchange (headers and body) is retried: a body cut short is as transient as a 503.
    /// <paramref name="send"/> sends the request for [offset, offset + count) (Send already retries the exchange).
    /// The buffer holds the data only when this returns; a failed attempt may have left part of a body in it.
    /// </summary>
    public void GetRange(Func<long, int, HttpResponseMessage> send, long offset, Span<byte> buffer, string what)
    {
        var delay = _options.RetryDelay;
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                using var response = send(offset, buffer.Length);
                RangeReader.Accept(response, offset, buffer.Length, what);
                ReadBody(response, buffer, what);
                return;
            }
            catch (BrokenBodyException) when (attempt < _options.Retries)
            {
                Interlocked.Increment(ref _retries);
                Thread.Sleep(delay + TimeSpan.FromMilliseconds(Random.Shared.Next(0, (int)delay.TotalMilliseconds + 1)));
                delay *= 2;
            }
        }
    }

    /// <summary>Adds a Range header for [offset, offset + count).</summary>
    public static HttpRequestMessage WithRange(HttpRequestMessage request, long offset, int count)
    {
        request.Headers.Range = new RangeHeaderValue(offset, offset + count - 1);
        return request;
    }

    /// <summary>Reads a whole small body (manifests, tokens), refusing bodies over <paramref name="limit"/>.</summary>
    public byte[] ReadSmallBody(HttpResponseMessage response, int limit, string what)
    {
        long? length = response.Content.Headers.ContentLength;
        if (length > limit) throw new InvalidDataException($"{what}: {length} bytes is more than the {limit} allowed");
        using var body = response.Content.ReadAsStream();
        using var copy = new MemoryStream();
        var buffer = new byte[16384];
        int n;
        while ((n = body.Read(buffer)) > 0)
        {
            if (copy.Length + n > limit) throw new InvalidDataException($"{what}: more than the {limit} bytes allowed");
            copy.Write(buffer, 0, n);
        }
        Interlocked.Add(ref _bytes, copy.Length);
        return copy.ToArray();
    }

    private static string Describe(Exception e) => e switch
    {
        OperationCanceledException => "timed out",
        HttpRequestException { InnerException: { } inner } h => $"{h.Message} ({inner.Message})",
        _ => e.Message,
    };

    public void Dispose()
    {
        _client.Dispose();
        _slots.Dispose();
    }
}

/// <summary>A response body that ended early or stalled: retried like any transient failure.</summary>
public sealed class BrokenBodyException(string message) : IOException(message);
