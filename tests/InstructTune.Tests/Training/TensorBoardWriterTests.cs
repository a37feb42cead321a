using System.Text;
using InstructTune.Training.Logging;

namespace InstructTune.Tests.Training;

public class TensorBoardWriterTests
{
    [Fact]
    public void Crc32CMatchesTheStandardCheckValue() =>
        // The CRC-32C catalogue check value of "123456789".
        Assert.Equal(0xE3069283u, Crc32C.Compute(Encoding.ASCII.GetBytes("123456789")));

    [Fact]
    public void EventFileIsByteIdenticalToGooglesProtobufRuntime()
    {
        // tools/golden/training_tfevents.py wrote the same events with python3-protobuf and crcmod.
        var expected = File.ReadAllBytes(TestPaths.Fixtures("training", "scalars.tfevents"));
        var dir = Directory.CreateTempSubdirectory("tb").FullName;
        using (var writer = new TensorBoardWriter(dir, wallTime: 1700000000.5, fileName: "events.out.tfevents.test"))
        {
            writer.AddScalar("train/loss", 2.75f, 1, 1700000001.25);
            writer.AddScalar("train/lr", 1e-4f, 1, 1700000001.25);
            writer.AddScalar("train/loss", 1.125f, 2, 1700000002.0);
            writer.AddScalar("eval/exact_match", 0.8125f, 10, 1700000010.0);
            writer.AddScalar("train/loss", 0f, 0, 1700000000.75);
        }
        Assert.Equal(expected, File.ReadAllBytes(Path.Combine(dir, "events.out.tfevents.test")));
    }
}
