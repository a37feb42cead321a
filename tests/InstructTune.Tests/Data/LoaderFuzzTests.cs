using System.Text;
using InstructTune.Data.Loading;
using InstructTune.Data.Records;

namespace InstructTune.Tests.Data;

/// <summary>
/// Fuzz-style robustness: every loader gets files of valid records mixed with truncated, mistyped and garbage ones
/// (cut at random bytes, fields swapped for numbers/arrays/null/objects, fields deleted, random and invalid UTF-8
/// bytes, flipped bytes). Each run must end in counted skips (skip policy) or a located DataFormatException
/// (fail policy, or a file-level problem), never any other exception, and nothing may go missing:
/// records read = kept + rejected, every rejection names the file.
/// </summary>
public class LoaderFuzzTests
{
    private static readonly Dictionary<DataFormat, string> Valid = new()
    {
        [DataFormat.Alpaca] = """{"instruction": "Add", "input": "1 and 2", "output": "3"}""",
        [DataFormat.Dolly] = """{"instruction": "Who?", "context": "Ann did.", "response": "Ann", "category": "closed_qa"}""",
        [DataFormat.ShareGpt] = """{"id": "x", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}""",
        [DataFormat.Messages] = """{"messages": [{"role": "system", "content": "Be kind"}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}""",
        [DataFormat.Gsm8k] = """{"question": "1+1?", "answer": "1+1=<<1+1=2>>2\n#### 2"}""",
        [DataFormat.SelfInstruct] = """{"id": "t1", "name": "n", "instruction": "Say hi", "instances": [{"input": "", "output": "hi"}], "is_classification": false}""",
    };

    private static readonly string[] Replacements = ["42", "[1, 2]", "null", "{\"a\": 1}", "true", "\"\"", "\"   \""];

    private static string Mutate(string record, Random rng)
    {
        switch (rng.Next(7))
        {
            case 0: return record[..rng.Next(1, record.Length)];                                   // truncated
            case 1:                                                                              // a value of the wrong type
                {
                    var quotes = Enumerable.Range(0, record.Length).Where(i => record[i] == ':').ToList();
                    int at = quotes[rng.Next(quotes.Count)] + 1;
                    int end = record.IndexOfAny([',', '}'], at + 1);
                    if (record[at..].TrimStart().StartsWith('[') || record[at..].TrimStart().StartsWith('"')) end = FindValueEnd(record, at);
                    return record[..at] + " " + Replacements[rng.Next(Replacements.Length)] + record[end..];
                }
            case 2:                                                                              // a field deleted
                {
                    var key = record.IndexOf('"', rng.Next(1, record.Length - 1));
                    return key < 0 ? record : record.Remove(key, Math.Min(rng.Next(3, 25), record.Length - key));
                }
            case 3: return new string(Enumerable.Range(0, rng.Next(1, 40)).Select(_ => (char)rng.Next(32, 127)).ToArray());  // garbage
            case 4: return record.Replace("\"H", "\"\\uZZ");                                      // bad escape
            case 5: return "[" + record;                                                          // unbalanced
            default: return record.Insert(rng.Next(record.Length), "\u00ff\u00fe");               // placeholder for invalid bytes
        }
    }

    private static int FindValueEnd(string s, int at)
    {
        int depth = 0; bool str = false;
        for (int i = at; i < s.Length; i++)
        {
            char c = s[i];
            if (str) { if (c == '\\') i++; else if (c == '"') { str = false; if (depth == 0) return i + 1; } continue; }
            if (c == '"') str = true;
            else if (c is '[' or '{') depth++;
            else if (c is ']' or '}') { depth--; if (depth == 0) return i + 1; if (depth < 0) return i; }
            else if (c == ',' && depth == 0) return i;
        }
        return s.Length;
    }

    /// <summary>Writes records as JSONL or a JSON array; "\u00ff\u00fe" markers become invalid UTF-8 bytes.</summary>
    private static void Write(string path, List<string> records, bool array)
    {
        var text = array ? "[\n" + string.Join(",\n", records) + "\n]" : string.Join("\n", records) + "\n";
        var bytes = new List<byte>();
        foreach (var part in text.Split("\u00ff\u00fe"))
        {
            if (bytes.Count > 0) bytes.AddRange([0xC3, 0x28, 0xFF]);   // invalid UTF-8 sequences
            bytes.AddRange(Encoding.UTF8.GetBytes(part));
        }
        File.WriteAllBytes(path, [.. bytes]);
    }

    private static void RunBoth(string path, DataFormat format)
    {
        var validator = new RecordValidator(InvalidPolicy.Skip);
        try
        {
            var kept = validator.Apply(DatasetLoader.Read(path, new LoadOptions(format))).Count();
            Assert.Equal(validator.Read, kept + validator.Rejected);
            Assert.Equal(validator.Rejected, validator.RejectedByReason.Values.Sum());
        }
        catch (DataFormatException ex) { Assert.Contains(path, ex.Message); }
        try { new RecordValidator(InvalidPolicy.Fail).Apply(DatasetLoader.Read(path, new LoadOptions(format))).Count(); }
        catch (DataFormatException ex)
        {
            Assert.Contains(path, ex.Message);
            if (ex.Rejection is { } r) Assert.False(string.IsNullOrEmpty(r.Reason));
        }
    }

    [Theory]
    [InlineData(DataFormat.Alpaca, true)]
    [InlineData(DataFormat.Alpaca, false)]
    [InlineData(DataFormat.Dolly, false)]
    [InlineData(DataFormat.ShareGpt, true)]
    [InlineData(DataFormat.Messages, false)]
    [InlineData(DataFormat.Gsm8k, false)]
    [InlineData(DataFormat.SelfInstruct, false)]
    public void JsonLoadersNeverThrowAnythingButLocatedErrors(DataFormat format, bool array)
    {
        var dir = Directory.CreateTempSubdirectory("itune-fuzz").FullName;
        var rng = new Random((int)format * 31 + (array ? 1 : 0));
        int rejectedSeen = 0;
        for (int round = 0; round < 150; round++)
        {
            var records = Enumerable.Range(0, 6).Select(i => rng.Next(3) == 0 ? Mutate(Valid[format], rng) : Valid[format]).ToList();
            var path = Path.Combine(dir, $"f{round}.json");
            Write(path, records, array);
            RunBoth(path, format);
            var v = new RecordValidator(InvalidPolicy.Skip);
            try { v.Apply(DatasetLoader.Read(path, new LoadOptions(format))).Count(); rejectedSeen += v.Rejected; } catch (DataFormatException) { }
        }
        Assert.True(rejectedSeen > 50, $"the fuzzer should produce many rejections, got {rejectedSeen}");
        // Truncated whole file: the last record is reported as truncated (array) or bad JSON (JSONL), at its line.
        var whole = Path.Combine(dir, "cut.json");
        Write(whole, [Valid[format], Valid[format]], array);
        var bytes = File.ReadAllBytes(whole);
        File.WriteAllBytes(whole, bytes[..(bytes.Length - 8)]);
        var items = DatasetLoader.Read(whole, new LoadOptions(format)).ToList();
        var last = items[^1].Rejection!;
        Assert.Equal(array ? RejectReason.Truncated : RejectReason.BadJson, last.Reason);
        Assert.Equal(array ? 3 : 2, last.Source.Line);
    }

    [Fact]
    public void InvalidUtf8IsRejectedByReason()
    {
        var dir = Directory.CreateTempSubdirectory("itune-fuzz").FullName;
        var path = Path.Combine(dir, "u.jsonl");
        Write(path, [Valid[DataFormat.Alpaca], Valid[DataFormat.Alpaca].Replace("Add", "A\u00ff\u00fedd")], array: false);
        var items = DatasetLoader.Read(path, new LoadOptions(DataFormat.Alpaca)).ToList();
        Assert.NotNull(items[0].Record);
        Assert.Equal((RejectReason.InvalidUtf8, 2), (items[1].Rejection!.Reason, items[1].Rejection!.Source.Line));
    }

    [Fact]
    public void CsvLoaderNeverThrowsAnythingButLocatedErrors()
    {
        var dir = Directory.CreateTempSubdirectory("itune-fuzz").FullName;
        var rng = new Random(7);
        var rows = new[] { "Add,1 and 2,3", "\"Quote, comma\",,\"multi\nline\"", "Say,,hi" };
        for (int round = 0; round < 150; round++)
        {
            var lines = new List<string> { "instruction,input,output" };
            for (int i = 0; i < 6; i++)
            {
                var row = rows[rng.Next(rows.Length)];
                lines.Add(rng.Next(3) != 0 ? row : rng.Next(4) switch
                {
                    0 => row[..rng.Next(1, row.Length)],
                    1 => "\"" + row,
                    2 => new string(Enumerable.Range(0, rng.Next(1, 30)).Select(_ => (char)rng.Next(32, 127)).ToArray()),
                    _ => row.Insert(rng.Next(row.Length), "\u00ff\u00fe"),
                });
            }
            var path = Path.Combine(dir, $"c{round}.csv");
            Write(path, lines, array: false);
            RunBoth(path, DataFormat.Csv);
        }
        var noHeader = Path.Combine(dir, "nh.csv");
        File.WriteAllText(noHeader, "a,b\n1,2\n");
        var ex = Assert.Throws<DataFormatException>(() => DatasetLoader.Read(noHeader, new LoadOptions(DataFormat.Csv)).Count());
        Assert.Contains("nh.csv:1", ex.Message);
    }

    [Fact]
    public void SniLoaderReportsBrokenTaskFilesAndBadInstances()
    {
        var dir = Directory.CreateTempSubdirectory("itune-fuzz").FullName;
        var good = """{"Definition": ["Copy the input."], "Categories": ["Misc"], "Positive Examples": [{"input": "a", "output": "a", "explanation": "same"}], "Instances": [{"id": "1", "input": "x", "output": ["x"]}, {"id": "2", "input": "y", "output": "y"}]}""";
        var rng = new Random(9);
        for (int round = 0; round < 100; round++)
        {
            var text = rng.Next(4) switch
            {
                0 => good[..rng.Next(1, good.Length)],
                1 => good.Replace("[\"x\"]", Replacements[rng.Next(Replacements.Length)]),
                2 => good.Replace("\"input\": \"y\", ", ""),
                _ => good.Replace("[\"Copy the input.\"]", Replacements[rng.Next(Replacements.Length)]),
            };
            var path = Path.Combine(dir, $"task{round}.json");
            Write(path, [text], array: false);
            RunBoth(path, DataFormat.Sni);
        }
        var broken = Path.Combine(dir, "broken.json");
        File.WriteAllText(broken, good.Replace("\"output\": [\"x\"]", "\"output\": 5"));
        var items = DatasetLoader.Read(broken, new LoadOptions(DataFormat.Sni)).ToList();
        Assert.Equal(1, items.Count(i => i.Record != null));
        var r = items.Single(i => i.Rejection != null).Rejection!;
        Assert.Equal(("Instances[0].output", RejectReason.WrongType, 0), (r.Field, r.Reason, r.Source.Index));
    }
}
